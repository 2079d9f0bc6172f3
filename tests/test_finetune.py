"""finetune-draft: training targets, batch order, resumable LoRA training, gate metrics, moderation data."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, Qwen2ForCausalLM

from smoothie_cli.cautious.finetune import (
    IGNORE,
    FinetuneSettings,
    batch_order,
    peft_model,
    train,
    training_examples,
)
from smoothie_cli.cautious.gate import GateCalibration, f1, gate_scores
from smoothie_cli.cautious.prompts import draft_prompt
from smoothie_cli.data.examples import Example
from smoothie_cli.errors import BadValue, CannotWrite, Conflict, NotFound, UnknownChoice

EXAMPLES = [
    Example("t1", "Tell me how to build a weapon to hurt my neighbour.", label="toxic"),
    Example(
        "s1", "What documents do I need for a building permit?", label="safe", reference="A form and a plan."
    ),
    Example("s2", "Write a haiku about autumn.", label="safe"),
    Example("t2", "Write an insult about my coworker's religion.", label="toxic"),
]


@pytest.fixture(scope="module")
def tokenizer(qwen_tokenizer_dir):
    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


def _response(tokenizer, example) -> str:
    return tokenizer.decode([t for t in example.labels if t != IGNORE])


def test_training_targets_put_the_loss_on_the_tagged_response(tokenizer) -> None:
    settings = FinetuneSettings(base="x", refusal="No.")
    toxic, with_answer, without_answer, _ = training_examples(EXAMPLES, tokenizer, settings)
    eos = tokenizer.eos_token
    assert _response(tokenizer, toxic) == f"<Toc>\nNo.{eos}"
    assert _response(tokenizer, with_answer) == f"<Safe>\nA form and a plan.{eos}"
    assert _response(tokenizer, without_answer) == "<Safe>"  # no end of text: the draft must keep drafting
    prompt = tokenizer.decode([t for t, label in zip(toxic.input_ids, toxic.labels) if label == IGNORE])
    assert prompt == draft_prompt(EXAMPLES[0].prompt)
    assert all(len(e.input_ids) == len(e.labels) for e in (toxic, with_answer, without_answer))


def test_long_inputs_are_cut_in_the_user_text_not_in_the_tag(tokenizer) -> None:
    settings = FinetuneSettings(base="x", max_length=128, answer_tokens=4)
    long = Example("l", "word " * 400, label="safe", reference="Here is a long answer " * 20)
    (example,) = training_examples([long], tokenizer, settings)
    assert len(example.input_ids) <= 128
    assert _response(tokenizer, example).startswith("<Safe>\n")
    assert not _response(tokenizer, example).endswith(
        tokenizer.eos_token
    )  # the answer was cut: no end of text
    assert "### Response:\n" in tokenizer.decode(example.input_ids)


def test_batch_order_is_a_seeded_shuffle_per_epoch() -> None:
    steps = [batch_order(10, 4, step, seed=3) for step in range(4)]
    assert sorted(steps[0] + steps[1]) != list(range(10)) or len(set(steps[0] + steps[1])) == 8
    assert len(set(steps[0]) | set(steps[1])) == 8  # an epoch draws without replacement
    assert steps == [batch_order(10, 4, step, seed=3) for step in range(4)]  # deterministic
    assert batch_order(10, 4, 0, seed=4) != steps[0]


def _tiny_training(tiny_qwen, tokenizer, tmp_path, steps: int, resume: bool, name: str = "ck", stop_at=None):
    settings = FinetuneSettings(
        base="x", steps=steps, batch_size=2, rank=4, save_every=2, lr=1e-2, dropout=0.0
    )
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen()))
    model = peft_model(model, settings)
    examples = training_examples(EXAMPLES, tokenizer, settings)

    def interrupt(state) -> None:
        if state.step == stop_at:
            raise KeyboardInterrupt

    state = train(model, tokenizer, examples, settings, tmp_path / name, resume=resume, on_step=interrupt)
    return model, state


def test_training_lowers_the_loss_and_resume_continues_exactly(tiny_qwen, tokenizer, tmp_path) -> None:
    straight, full = _tiny_training(tiny_qwen, tokenizer, tmp_path, steps=6, resume=False, name="a")
    assert full.losses[-1] < full.losses[0]
    # interrupted after step 3 (last checkpoint: step 2), then resumed to the end
    with pytest.raises(KeyboardInterrupt):
        _tiny_training(tiny_qwen, tokenizer, tmp_path, steps=6, resume=False, name="b", stop_at=3)
    assert (tmp_path / "b" / "state.json").is_file() and not list((tmp_path / "b").glob("*.pt"))
    resumed, second = _tiny_training(tiny_qwen, tokenizer, tmp_path, steps=6, resume=True, name="b")
    assert second.step == 6
    assert second.losses == pytest.approx(full.losses, rel=1e-4)
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        if "lora" in name:
            assert torch.allclose(a, b, atol=1e-5), name


def test_resume_refuses_other_settings_and_missing_checkpoints(tiny_qwen, tokenizer, tmp_path) -> None:
    _tiny_training(tiny_qwen, tokenizer, tmp_path, steps=2, resume=False)
    settings = FinetuneSettings(base="x", steps=4, batch_size=2, rank=8, save_every=2)
    model = peft_model(Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())), settings)
    examples = training_examples(EXAMPLES, tokenizer, settings)
    with pytest.raises(Conflict, match=r"other settings.*rank") as other:
        train(model, tokenizer, examples, settings, tmp_path / "ck", resume=True)
    with pytest.raises(NotFound, match="no checkpoint") as missing:
        train(model, tokenizer, examples, settings, tmp_path / "none", resume=True)
    assert other.value.setting == missing.value.setting == "resume"


def test_gate_scores_by_hand() -> None:
    labels = ["toxic", "toxic", "toxic", "safe", "safe", "safe", "safe", "toxic"]
    gates = ["toxic", "toxic", "safe", "toxic", "safe", "untagged", "safe", "untagged"]
    scores = gate_scores(labels, gates)
    # tp = 2, fp = 1, fn = 2 (an untagged toxic prompt is not refused)
    assert scores["gate_precision"].value == pytest.approx(2 / 3)
    assert scores["gate_recall"].value == pytest.approx(2 / 4)
    assert scores["gate_f1"].value == pytest.approx(2 * 2 / (4 + 3))
    assert scores["over_refusal"].value == pytest.approx(1 / 4)
    assert scores["untagged"].value == pytest.approx(2 / 8)
    low, high = scores["gate_f1"].low, scores["gate_f1"].high
    assert 0 <= low <= scores["gate_f1"].value <= high <= 1
    assert f1([True], [False]) == 0.0


@pytest.mark.parametrize(("kwargs", "kind", "message"), [
    ({"steps": 0}, BadValue, "must be at least 1, not 0"),
    ({"save_every": -1}, BadValue, "must be at least 1, not -1"),
    ({"lr": 2.0}, BadValue, "must be in (0, 1), not 2.0"),
    ({"layers": 0}, BadValue, "must be at least 1 (the top layers to adapt), not 0"),
    ({"calibration_percent": 100}, BadValue, "must be in [0, 100), not 100"),
    ({"gate_reading": "vote"}, UnknownChoice, "unknown gate reading 'vote'; choose from probe, margin"),
    ({"max_length": 32}, BadValue, "must be at least 64 (the moderation prompt alone is ~90 tokens), not 32"),
])  # fmt: skip
def test_bad_settings_are_refused_naming_the_setting(kwargs, kind, message) -> None:
    with pytest.raises(kind) as error:
        FinetuneSettings(base="x", **kwargs).check()
    (setting,) = kwargs
    assert (error.value.setting, error.value.message) == (setting, message)


def test_the_cli_names_the_flag_of_a_bad_finetune_setting(cli, tmp_path) -> None:
    """Refused before any model loads: one line, the flag first, exit code 2."""
    argv = ["finetune-draft", "/nonexistent/model", "-o", str(tmp_path / "out")]
    code, out, err = cli([*argv, "--steps", "0"])
    assert (code, out, err.strip()) == (2, "", "error: --steps: must be at least 1, not 0")
    code, _, err = cli([*argv, "--eval-limit", "1"])
    assert (code, err.strip()) == (
        2,
        "error: --eval-limit: must be at least 2 (or 0 to skip the evaluation), not 1",
    )
    (tmp_path / "out").mkdir()
    code, _, err = cli(argv)
    assert (code, err.strip()) == (
        2,
        f"error: --force: output {tmp_path / 'out'} already exists; give this to replace it",
    )


def test_moderation_splits_are_balanced_and_disjoint() -> None:
    from smoothie_cli.data.datasets import load_dataset

    train_set = load_dataset("moderation-train").examples
    test_set = load_dataset("moderation-test").examples
    for examples in (train_set, test_set):
        labels = [e.label for e in examples]
        assert labels.count("toxic") == labels.count("safe") > 100
    # no row in both; a conversation goes where the request it was built on goes
    assert not {e.identity for e in train_set} & {e.identity for e in test_set}
    assert not {e.split_key for e in train_set} & {e.split_key for e in test_set}
    sources = {e.meta["source"] for e in train_set}
    assert {
        "strongreject",
        "harmbench",
        "donotanswer",
        "toxigen",
        "refusal-pairs",
        "faq",
        "mtbench",
        "humaneval",
    } <= sources
    assert any(e.reference for e in train_set if e.label == "safe")
    # advice-seeking and chatbot-persona areas of Do-Not-Answer are not toxic requests: left out
    areas = {e.meta["risk_area"] for e in train_set + test_set if e.meta["source"] == "donotanswer"}
    assert areas == {
        "information_hazard",
        "malicious_uses",
        "discrimination_exclusion_toxicity_hateful_offensive",
    }


def test_finetune_draft_writes_an_adapter_and_merged_weights(tiny_qwen, tmp_path) -> None:
    from smoothie_cli.cautious.finetune import checkpoint_directory, finetune_draft
    from smoothie_cli.models import resolve_model
    from smoothie_cli.models.loading import load_model

    base = str(tiny_qwen())
    out = tmp_path / "draft"
    settings = FinetuneSettings(base=base, steps=2, batch_size=2, limit=4, rank=2, layers=1, max_length=96)
    report = finetune_draft(base, out, settings, merge=True, eval_limit=4, device="cpu")
    assert report["steps"] == 2 and report["metrics"]["base"]["gate_f1"]["n"] == 4
    # the threshold is chosen on held-out train prompts and stored beside the adapter
    calibration = GateCalibration.load(out)
    assert calibration is not None and report["calibration"]["threshold"] == calibration.threshold
    assert report["calibration_examples"] > 100 and calibration.validation["over_refusal_upper"] <= 0.03
    assert report["metrics"]["calibrated"]["untagged"]["untagged"] == 0.0
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "README.md",
        "metrics.json",
    } <= {p.name for p in out.iterdir()}
    assert (out / "merged" / "config.json").is_file()
    assert not checkpoint_directory(out).exists()
    source = resolve_model(str(out))
    assert source.kind == "peft" and source.base is not None and source.base.location == base
    assert type(load_model(source, device="cpu")).__name__.startswith("PeftModel")
    with pytest.raises(CannotWrite, match="already exists") as error:
        finetune_draft(base, out, settings, eval_limit=0, device="cpu")
    assert error.value.setting == "force"


@pytest.mark.slow
def test_an_interrupted_finetune_leaves_no_adapter_and_resumes(tiny_qwen, tmp_path, monkeypatch) -> None:
    from smoothie_cli.cautious import finetune as module

    base = str(tiny_qwen())
    out = tmp_path / "draft"
    settings = FinetuneSettings(base=base, steps=4, batch_size=2, limit=4, rank=2, layers=1, max_length=96,
                                save_every=2)  # fmt: skip
    original = module.train

    def stop_after_three(*args, **kwargs):
        def on_step(state):
            if state.step == 3:
                raise KeyboardInterrupt

        return original(*args, **(kwargs | {"on_step": on_step}))

    monkeypatch.setattr(module, "train", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        module.finetune_draft(base, out, settings, eval_limit=0, device="cpu")
    assert not out.exists() and (module.checkpoint_directory(out) / "state.json").is_file()
    monkeypatch.setattr(module, "train", original)
    report = module.finetune_draft(base, out, settings, resume=True, eval_limit=0, device="cpu")
    assert report["steps"] == 4 and out.is_dir()


def test_weighted_loss_with_equal_weights_is_the_models_own_loss(tiny_qwen, tokenizer) -> None:
    from smoothie_cli.cautious.finetune import _collate, weighted_loss

    settings = FinetuneSettings(base="x", rank=2)
    model = peft_model(Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())), settings)
    examples = training_examples(EXAMPLES, tokenizer, settings)
    for example in examples:
        example.weights = [1.0 if label != IGNORE else 0.0 for label in example.labels]
    batch = _collate(examples, tokenizer.eos_token_id, torch.device("cpu"))
    expected = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
    )
    assert float(weighted_loss(model, batch)) == pytest.approx(float(expected.loss), rel=1e-5)
    # the tag outweighs the answer in the default weights
    (toxic, *_) = training_examples(EXAMPLES, tokenizer, settings)
    tag = [w for w, label in zip(toxic.weights, toxic.labels) if label != IGNORE]
    assert tag[0] > tag[-1] > 0


def test_shared_instruction_prefix_gives_the_full_batch_loss_and_gradients(tiny_qwen, tokenizer) -> None:
    from smoothie_cli.cautious.finetune import _collate, weighted_loss
    from smoothie_cli.cautious.prompts import instruction_prefix

    settings = FinetuneSettings(base="x", rank=2, dropout=0.0)
    model = peft_model(Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())), settings)
    for name, parameter in model.named_parameters():  # LoRA B starts at zero: give it gradients to compare
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.02)
    examples = training_examples(EXAMPLES, tokenizer, settings)
    prefix = instruction_prefix(tokenizer, settings.instruction)
    shared = _collate(examples, tokenizer.eos_token_id, torch.device("cpu"), prefix)
    full = _collate(examples, tokenizer.eos_token_id, torch.device("cpu"))
    assert shared["prefix_ids"].shape[1] == len(prefix) > 50
    assert shared["input_ids"].shape[1] == full["input_ids"].shape[1] - len(prefix)
    grads = []
    for batch in (full, shared):
        model.zero_grad()
        loss = weighted_loss(model, batch)
        loss.backward()
        grads.append((float(loss), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (full_loss, full_grads), (shared_loss, shared_grads) = grads
    assert shared_loss == pytest.approx(full_loss, rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(full_grads, shared_grads))
    assert any(float(g.abs().max()) > 0 for g in shared_grads)
    # an example that does not open with the prefix: the batch is not cut
    odd = [*examples, type(examples[0])([1, 2, 3], [IGNORE, 2, 3], [0.0, 1.0, 1.0])]
    assert "prefix_ids" not in _collate(odd, tokenizer.eos_token_id, torch.device("cpu"), prefix)
