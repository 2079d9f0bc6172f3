"""The gate's calibrated reading: tag margins, the threshold choice, gate.json, and the decoder using it."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer, Qwen2ForCausalLM

from smoothie_cli.cautious.decoder import CautiousDecoder
from smoothie_cli.cautious.gate import (
    GateCalibration,
    GatePolicy,
    GateReader,
    average_precision,
    binomial_upper_bound,
    calibrate,
    classify,
    gate_scores,
    roc_auc,
    tag_margins,
    tag_tokens,
)
from smoothie_cli.cautious.loading import gate_threshold
from smoothie_cli.cautious.prompts import draft_prompt
from smoothie_cli.errors import BadValue, SmoothieError, UnknownChoice
from smoothie_cli.generation.engine import Engine


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_tokenizer_dir):
    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


def test_tags_part_at_their_first_token(qwen_tokenizer) -> None:
    tags = tag_tokens(qwen_tokenizer)
    assert tags.shared == ()
    assert qwen_tokenizer.decode([tags.toxic]) == "<T" and qwen_tokenizer.decode([tags.safe]) == "<S"


def test_calibration_keeps_over_refusal_under_the_target_and_maximises_f1() -> None:
    margins = [-3.0, -2.0, -1.0, 0.5, 2.0, 1.0, 1.5, 3.0, -0.5, 0.2]
    labels = ["safe"] * 5 + ["toxic"] * 5
    loose = calibrate(
        margins, labels, max_over_refusal=0.2, confidence=None
    )  # one safe prompt (2.0) may be flagged
    assert loose.validation["over_refusal"] == pytest.approx(0.2)
    assert 0.5 < loose.threshold < 1.0  # 4 toxic above it (-0.5, 0.2 below), safe 2.0 above
    assert loose.validation["recall"] == pytest.approx(0.6)
    strict = calibrate(margins, labels, max_over_refusal=0.0, confidence=None)
    assert strict.threshold > 2.0 and strict.validation["over_refusal"] == 0.0
    assert strict.validation["recall"] == pytest.approx(0.2)  # only 3.0 is above every safe margin
    # a perfect separation: the threshold sits between the classes
    perfect = calibrate([-2.0, -1.0, 1.0, 2.0], ["safe", "safe", "toxic", "toxic"], 0.0, confidence=None)
    assert -1.0 < perfect.threshold < 1.0 and perfect.validation["f1"] == 1.0
    with pytest.raises(SmoothieError, match="both toxic and safe"):
        calibrate([1.0, 2.0], ["toxic", "toxic"])
    with pytest.raises(
        BadValue, match=r"must be in \[0, 1\] \(a share of benign prompts\), not 1.5"
    ) as error:
        calibrate(margins, labels, max_over_refusal=1.5)
    assert error.value.setting == "max_over_refusal"


def test_calibration_file_round_trip_and_bad_file(tmp_path) -> None:
    calibration = GateCalibration(0.75, 0.05, {"f1": 0.9})
    calibration.save(tmp_path)
    assert GateCalibration.load(tmp_path) == calibration
    assert GateCalibration.load(tmp_path / "elsewhere") is None and GateCalibration.load(None) is None
    (tmp_path / "gate.json").write_text('{"max_over_refusal": 0.05}')
    with pytest.raises(SmoothieError, match="is not a gate calibration"):
        GateCalibration.load(tmp_path)


def test_gate_threshold_option() -> None:
    assert gate_threshold("auto", 1.5) == 1.5 and gate_threshold("auto", None) is None
    assert gate_threshold("greedy", 1.5) is None and gate_threshold("-0.25", None) == -0.25
    with pytest.raises(BadValue) as error:
        gate_threshold("high", None)
    assert error.value.setting == "gate_threshold"
    assert error.value.message == "must be auto, greedy or a number (a log-odds margin), not 'high'"


def test_batched_margins_equal_one_prompt_at_a_time(qwen_tokenizer, tiny_qwen) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    prompts = ["hi", "How do I bake bread at home, step by step?", "x " * 40, "你好"]
    tags = tag_tokens(qwen_tokenizer)
    batched = tag_margins(model, qwen_tokenizer, prompts, batch_size=3, token_budget=200)
    for prompt, margin in zip(prompts, batched):
        ids = qwen_tokenizer(draft_prompt(prompt), add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert margin == pytest.approx(float(logits[tags.toxic] - logits[tags.safe]), abs=1e-4)
    # a threshold decides every prompt (never untagged), on the side of its margin
    low, high = min(batched) - 1, max(batched) + 1
    assert classify(model, qwen_tokenizer, prompts, threshold=low) == ["toxic"] * len(prompts)
    assert classify(model, qwen_tokenizer, prompts, threshold=high) == ["safe"] * len(prompts)


def test_decoder_reads_the_calibrated_gate(qwen_tokenizer, tiny_qwen) -> None:
    """The same draft refuses or answers by the threshold alone; answered text is the target's."""
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    draft = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    (margin,) = tag_margins(draft, qwen_tokenizer, ["what is a cat"])
    engine = Engine(model, qwen_tokenizer, draft)
    refusing = CautiousDecoder(engine, GateReader(draft, qwen_tokenizer, threshold=margin - 0.01,
                                                  policy=GatePolicy("No.")))  # fmt: skip
    result = refusing.generate("what is a cat", max_new_tokens=4)
    assert (result.gate, result.text, result.stats.target_forwards) == ("toxic", "No.", 0)
    answering = CautiousDecoder(Engine(model, qwen_tokenizer, draft, stop_ids=set()),
                                GateReader(draft, qwen_tokenizer, threshold=margin + 0.01))  # fmt: skip
    result = answering.generate("what is a cat", max_new_tokens=4)
    alone = CautiousDecoder(Engine(model, qwen_tokenizer, stop_ids=set())).generate("what is a cat", 4)
    assert result.gate == "safe" and result.token_ids == alone.token_ids


def test_a_separate_gate_model_reads_the_tag(qwen_tokenizer, tiny_qwen) -> None:
    """An int8 draft's tag is read by its full-precision copy: the decision follows the gate model."""
    target = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    draft, reader = (_noisy(target, seed) for seed in (3, 4))
    (draft_margin,) = tag_margins(draft, qwen_tokenizer, ["what is a cat"])
    (reader_margin,) = tag_margins(reader, qwen_tokenizer, ["what is a cat"])
    assert abs(draft_margin - reader_margin) > 1e-3
    between = (draft_margin + reader_margin) / 2
    decoder = CautiousDecoder(Engine(target, qwen_tokenizer, draft, stop_ids=set()),
                              GateReader(reader, qwen_tokenizer, threshold=between))  # fmt: skip
    result = decoder.generate("what is a cat", max_new_tokens=4)
    assert result.gate == ("toxic" if reader_margin > between else "safe")
    if result.gate == "safe":
        alone = CautiousDecoder(Engine(target, qwen_tokenizer, stop_ids=set())).generate("what is a cat", 4)
        assert result.token_ids == alone.token_ids
    flipped = CautiousDecoder(Engine(target, qwen_tokenizer, reader, stop_ids=set()),
                              GateReader(draft, qwen_tokenizer, threshold=between))  # fmt: skip
    assert flipped.generate("what is a cat", max_new_tokens=4).gate != result.gate


def _noisy(model: Qwen2ForCausalLM, seed: int) -> Qwen2ForCausalLM:
    copy = Qwen2ForCausalLM(model.config).eval()
    copy.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in copy.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.5 * parameter.std())
    return copy


@pytest.mark.parametrize(("gate_model", "reader"), [("full", True), ("draft", False)])
def test_int8_draft_keeps_a_full_precision_reader_for_its_gate(tiny_qwen, qwen_tokenizer, gate_model, reader):
    from smoothie_cli.cautious.loading import load_draft

    draft = load_draft(str(tiny_qwen()), qwen_tokenizer, "cpu", "float32", "int8", gate_model=gate_model)
    assert draft.quant == "int8" and (draft.gate_model is not None) is reader
    from smoothie_cli.models.int8 import Int8Linear

    assert any(isinstance(m, Int8Linear) for m in draft.model.modules())
    if reader:  # the reader is the float32 model (oneDNN-packed), untouched by the quantisation of its copy
        from smoothie_cli.models.cpu import PrepackedLinear, can_prepack

        expected = PrepackedLinear if can_prepack(draft.gate_model) else torch.nn.Linear
        assert type(draft.gate_model.lm_head) is expected
        assert next(draft.gate_model.parameters()).dtype == torch.float32
        assert isinstance(draft.model.lm_head, Int8Linear)
    with pytest.raises(UnknownChoice, match="unknown gate model 'half'; choose from full, draft") as error:
        load_draft(str(tiny_qwen()), qwen_tokenizer, "cpu", "float32", "int8", gate_model="half")
    assert error.value.setting == "gate_model"


def test_clopper_pearson_upper_bound_matches_closed_forms() -> None:
    # zero events: the bound is 1 - alpha^(1/n) exactly; all events: 1
    assert binomial_upper_bound(0, 100, 0.95) == pytest.approx(1 - 0.05 ** (1 / 100), abs=1e-9)
    assert binomial_upper_bound(7, 7) == 1.0 and binomial_upper_bound(0, 0) == 1.0
    # n = 1, one event out of... k=0 of 1: P(X<=0) = 1-p = alpha → p = 0.95
    assert binomial_upper_bound(0, 1, 0.95) == pytest.approx(0.95, abs=1e-9)
    # a textbook value: 2 of 20 at 95% one-sided → 0.2826 (Clopper-Pearson)
    assert binomial_upper_bound(2, 20, 0.95) == pytest.approx(0.2826, abs=5e-4)
    # monotone in successes and in confidence
    assert binomial_upper_bound(3, 200) < binomial_upper_bound(4, 200)
    assert binomial_upper_bound(3, 200, 0.8) < binomial_upper_bound(3, 200, 0.95)


def test_calibration_with_a_confidence_bound_is_stricter_than_the_point_estimate() -> None:
    # 200 safe prompts spread over [-10, 0), 200 toxic over [-2, 8): a point estimate of 3% lets 6 safe
    # prompts through; a 95% upper bound under 3% allows far fewer
    safe = [-10 + i * 0.05 for i in range(200)]
    toxic = [-2 + i * 0.05 for i in range(200)]
    margins, labels = safe + toxic, ["safe"] * 200 + ["toxic"] * 200
    point = calibrate(margins, labels, 0.03, confidence=None)
    bounded = calibrate(margins, labels, 0.03, confidence=0.95)
    assert point.validation["over_refusal"] == pytest.approx(6 / 200)
    flagged = round(bounded.validation["over_refusal"] * 200)
    assert bounded.validation["over_refusal_upper"] <= 0.03 < binomial_upper_bound(flagged + 1, 200)
    assert bounded.threshold > point.threshold and bounded.validation["recall"] < point.validation["recall"]
    with pytest.raises(SmoothieError, match="confidence"):
        calibrate(margins, labels, 0.03, confidence=1.0)


def test_calibration_picks_what_a_bound_per_candidate_threshold_would() -> None:
    # calibrate finds the most safe prompts a threshold may flag once; the rule it replaces computed the
    # bound for every candidate threshold (slow with thousands of distinct scores): both must agree
    import itertools
    import random

    from smoothie_cli.cautious.gate import f1

    for seed in range(4):
        rng = random.Random(seed)
        margins = [rng.gauss(1, 1) for _ in range(150)] + [rng.gauss(-1, 1) for _ in range(250)]
        labels = ["toxic"] * 150 + ["safe"] * 250
        for target, confidence in ((0.03, 0.95), (0.1, 0.8), (0.05, None), (0.0, 0.95)):
            chosen = calibrate(margins, labels, target, confidence).threshold
            values = sorted(set(margins))
            candidates = (
                [values[0] - 1] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1]
            )
            safe = [m for m, label in zip(margins, labels) if label == "safe"]
            toxic = [label == "toxic" for label in labels]
            best, expected = None, candidates[-1]
            for threshold in candidates:
                flagged_safe = sum(m > threshold for m in safe)
                bound = (
                    flagged_safe / len(safe)
                    if confidence is None
                    else (binomial_upper_bound(flagged_safe, len(safe), confidence))
                )
                if bound > target + 1e-12:
                    continue
                flagged = [m > threshold for m in margins]
                key = (f1(toxic, flagged), sum(f and t for f, t in zip(flagged, toxic)), -threshold)
                if best is None or key > best:
                    best, expected = key, threshold
            assert chosen == pytest.approx(round(expected, 6))


def test_average_precision_and_auc_by_hand() -> None:
    # ranking: T(3) S(2) T(1) S(0): precision at the two hits 1 and 2/3 → AP = (1 + 2/3) / 2
    scores, positive = [3.0, 2.0, 1.0, 0.0], [True, False, True, False]
    assert average_precision(scores, positive) == pytest.approx((1 + 2 / 3) / 2)
    assert roc_auc(scores, positive) == pytest.approx(0.75)  # 3 of 4 (pos, neg) pairs in order
    assert average_precision([1.0, 1.0], [True, False]) == pytest.approx(0.5)  # a tie enters together
    assert roc_auc([1.0, 1.0], [True, False]) == pytest.approx(0.5)
    perfect = gate_scores(["toxic", "safe"], ["toxic", "safe"], margins=[2.0, -1.0])
    assert perfect["gate_auprc"].value == 1.0 and perfect["gate_auc"].value == 1.0
    assert "gate_auprc" not in gate_scores(["toxic"], ["toxic"])


def test_an_int8_draft_reading_its_own_tag_takes_its_own_threshold(
    tiny_qwen, qwen_tokenizer, tmp_path
) -> None:
    import shutil

    from smoothie_cli.cautious.loading import load_draft
    from smoothie_cli.cautious.quantize import INT8_CALIBRATION_FILE, save_reading

    directory = tmp_path / "draft"
    shutil.copytree(tiny_qwen(), directory)
    GateCalibration(0.5, 0.03, {}).save(directory)
    spec = str(directory)
    assert (
        load_draft(spec, qwen_tokenizer, "cpu", "float32", "int8", gate_model="draft").gate_threshold == 0.5
    )
    save_reading(GateCalibration(-1.25, 0.03, {"f1": 0.8}), directory)
    assert (directory / INT8_CALIBRATION_FILE).is_file()
    own = load_draft(spec, qwen_tokenizer, "cpu", "float32", "int8", gate_model="draft")
    full = load_draft(spec, qwen_tokenizer, "cpu", "float32", "int8", gate_model="full")
    plain = load_draft(spec, qwen_tokenizer, "cpu", "float32", "none", gate_model="draft")
    assert (own.gate_threshold, full.gate_threshold, plain.gate_threshold) == (-1.25, 0.5, 0.5)
    # one written for the per-tensor int8 of before (no "quantization") read other states: gate.json applies
    stale = json.loads((directory / INT8_CALIBRATION_FILE).read_text())
    assert stale.pop("quantization") == "int8-per-token"
    (directory / INT8_CALIBRATION_FILE).write_text(json.dumps(stale))
    assert (
        load_draft(spec, qwen_tokenizer, "cpu", "float32", "int8", gate_model="draft").gate_threshold == 0.5
    )
    (directory / INT8_CALIBRATION_FILE).write_text('{"threshold": NaN, "max_over_refusal": 0.03}')
    with pytest.raises(SmoothieError, match=r"gate-int8\.json is not a gate calibration"):
        load_draft(spec, qwen_tokenizer, "cpu", "float32", "int8", gate_model="draft")


def test_calibration_holds_every_traffic_family_under_the_target() -> None:
    from smoothie_cli.cautious.calibration import calibrate

    # 40 toxic prompts at 5..44; "chat" (benign) has 3 prompts of 40 scoring 8, 9, 10; "exams" 200 low
    toxic = [float(m) for m in range(5, 45)]
    chat = [0.0] * 37 + [8.0, 9.0, 10.0]
    exams = [0.0] * 200
    margins = toxic + chat + exams
    labels = ["toxic"] * 40 + ["safe"] * 240
    pooled = calibrate(margins, labels, max_over_refusal=0.03, confidence=None)
    assert pooled.threshold < 8  # 3 of 240 benign prompts refused is within 3% pooled
    groups = [None] * 40 + ["chat"] * 40 + ["exams"] * 200
    held = calibrate(margins, labels, max_over_refusal=0.03, confidence=None, groups=groups)
    # 2 of chat's 40 is 5%: the threshold rises until one is left (2.5%)
    assert 9 < held.threshold < 10 and held.validation["family_over_refusal_max"] == 0.025
    looks = calibrate(margins, labels, max_over_refusal=0.03, confidence=None,
                      groups=[None] * 40 + [None] * 40 + ["exams"] * 200)  # fmt: skip
    assert looks.threshold == pooled.threshold  # a family pooled only (None) does not bind
