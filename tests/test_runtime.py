"""The run-time scales: the LogitsProcessor reproduces the checkpoint edit; bias mode only suppresses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from smoothie_cli.cli import main
from smoothie_cli.smoothing.runtime import MIN_LOGIT_BIAS, TokenScaleLogitsProcessor, logit_bias_map
from smoothie_cli.smoothing.scales import TokenScales


def smoothed_copy(source: Path, out: Path, capsys) -> TokenScales:
    with pytest.raises(SystemExit):
        main(["smooth", str(source), "-o", str(out), "--min-scale", "0.2", "--json"])
    capsys.readouterr()
    record = json.loads((out / "smoothie.json").read_text())
    return TokenScales({int(k): v for k, v in record["scaled_rows"].items()}, 0.2, 10.0, 0, 0, "", "")


@pytest.mark.parametrize("tied", [False, True])
def test_scale_processor_matches_the_weight_edit(tiny_qwen, tmp_path: Path, capsys, tied: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = tiny_qwen(tied=tied)
    scales = smoothed_copy(source, tmp_path / "smoothed", capsys)
    base = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).eval()
    edited = AutoModelForCausalLM.from_pretrained(str(tmp_path / "smoothed"), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    inputs = tokenizer(
        ["请把这句话翻译成中文: hello world", "def add(a, b):"], return_tensors="pt", padding=True
    )
    processor = TokenScaleLogitsProcessor(scales, mode="scale")
    with torch.no_grad():
        base_logits = base(**inputs).logits[:, -1, :]
        edited_logits = edited(**inputs).logits[:, -1, :]
    torch.testing.assert_close(
        processor(inputs["input_ids"], base_logits), edited_logits, rtol=1e-5, atol=1e-5
    )
    # and through generate(): the same greedy tokens
    with torch.no_grad():
        via_processor = base.generate(
            **inputs, max_new_tokens=6, do_sample=False, logits_processor=[processor]
        )
        via_weights = edited.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert torch.equal(via_processor, via_weights)


def test_bias_mode_is_a_pure_suppression():
    scales = torch.ones(10)
    scales[[2, 5, 7]] = torch.tensor([0.5, 0.25, 0.0])
    scores = torch.tensor([[1.0, -2.0, -3.0, 0.5, 2.0, 4.0, 0.0, -1.0, 3.0, 1.5]])
    biased = TokenScaleLogitsProcessor(scales, mode="bias")(None, scores)
    scaled = TokenScaleLogitsProcessor(scales, mode="scale")(None, scores)
    assert (biased <= scores).all()
    assert scaled[0, 2] > scores[0, 2]  # logit × S moves a negative logit up
    assert biased[0, 7] == -math.inf
    before, after = scores.softmax(-1), biased.softmax(-1)
    # probability × S before normalisation: ratios against an unscaled token shrink by exactly S
    for token in (2, 5):
        ratio = (after[0, token] / after[0, 0]) / (before[0, token] / before[0, 0])
        assert ratio.item() == pytest.approx(scales[token].item(), rel=1e-5)


def test_lower_mode_is_scale_mode_that_never_raises():
    scales = torch.ones(10)
    scales[[2, 5, 7]] = torch.tensor([0.5, 0.25, 0.0])
    scores = torch.tensor([[1.0, -2.0, -3.0, 0.5, 2.0, 4.0, 0.0, -1.0, 3.0, 1.5]])
    lowered = TokenScaleLogitsProcessor(scales, mode="lower")(None, scores)
    scaled = TokenScaleLogitsProcessor(scales, mode="scale")(None, scores)
    assert (lowered <= scores).all()
    assert lowered[0, 2] == scores[0, 2] and lowered[0, 7] == scores[0, 7]  # negative logits stay
    assert lowered[0, 5] == scaled[0, 5] == 1.0  # a positive one: exactly scale mode (4 × 0.25)
    assert lowered.argmax() == scaled.argmax()


def test_wider_vocabulary_keeps_extra_columns():
    scales = torch.full((4,), 0.5)
    scores = torch.arange(6, dtype=torch.float32).view(1, 6)
    out = TokenScaleLogitsProcessor(scales)(None, scores)
    assert out[0, :4].tolist() == [0.0, 0.5, 1.0, 1.5] and out[0, 4:].tolist() == [4.0, 5.0]
    assert scores[0, 1] == 1.0  # the input scores are not modified in place


def test_logit_bias_map():
    scales = TokenScales({3: 0.5, 9: 0.0, 11: 1e-60}, 0.0, 10.0, 0, 0, "", "")
    bias = logit_bias_map(scales)
    assert bias[3] == pytest.approx(math.log(0.5))
    assert bias[9] == MIN_LOGIT_BIAS and bias[11] == MIN_LOGIT_BIAS
    with pytest.raises(ValueError):
        TokenScaleLogitsProcessor(scales, mode="multiply")  # type: ignore[arg-type]
