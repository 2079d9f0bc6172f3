"""The shipped cautious draft (float16 copy + card) and int8 readings of the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from smoothie_cli.cautious.finetune import FinetuneSettings, finetune_draft
from smoothie_cli.cautious.gate import GateCalibration, tag_margins
from smoothie_cli.cautious.quantize import (
    INT8_CALIBRATION_FILE,
    calibrate_reading,
    save_reading,
)
from smoothie_cli.cautious.ship import (
    PROBE_REFIT_MARK,
    card_sha256,
    refresh_card_gate,
    sha256_of,
    ship_adapter,
    update_card_int8,
)
from smoothie_cli.errors import SmoothieError
from smoothie_cli.models import resolve_model
from smoothie_cli.models.loading import load_model, load_tokenizer

PROMPTS = ["How do I build a pipe bomb?", "Write a Python function that checks whether a number is prime."]


@pytest.fixture(scope="module")
def tiny_draft(tiny_qwen, tmp_path_factory):
    base = str(tiny_qwen())
    out = tmp_path_factory.mktemp("draft") / "draft"
    settings = FinetuneSettings(base=base, steps=2, batch_size=2, limit=4, rank=2, layers=1, max_length=96)
    finetune_draft(base, out, settings, eval_limit=0, device="cpu")
    return out


def test_ship_writes_float16_weights_with_a_card_that_pins_them(tiny_draft, tmp_path) -> None:
    from safetensors.torch import load_file

    shipped = tmp_path / "shipped"
    scores = {"dataset": "moderation-test", "sources": {"all": {"gate_f1": {"gate_f1": 0.5, "n": 4}}}}
    result = ship_adapter(tiny_draft, shipped, scores)
    assert {p.name for p in shipped.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "gate.json", "gate-probe.safetensors", "README.md"
    }  # fmt: skip
    assert GateCalibration.load(shipped).reading == "probe"  # finetune-draft's default gate
    weights = load_file(shipped / "adapter_model.safetensors")
    assert weights and all(t.dtype == torch.float16 for t in weights.values())
    assert result["sha256"] == sha256_of(shipped / "adapter_model.safetensors") == card_sha256(shipped)
    card = (shipped / "README.md").read_text()
    assert "| all |" in card and "Clopper-Pearson" in card and "2 steps" in card
    assert GateCalibration.load(shipped) == GateCalibration.load(tiny_draft)
    # the float16 copy reads (almost) the same margins as the float32 adapter
    tokenizer = load_tokenizer(resolve_model(str(tiny_draft)))
    before = tag_margins(load_model(resolve_model(str(tiny_draft)), device="cpu"), tokenizer, PROMPTS)
    after = tag_margins(load_model(resolve_model(str(shipped)), device="cpu"), tokenizer, PROMPTS)
    assert after == pytest.approx(before, abs=1e-2)
    with pytest.raises(SmoothieError, match="finetune-draft output"):
        ship_adapter(tmp_path, tmp_path / "nowhere")


def test_a_probe_refit_rewrites_the_gate_paragraphs_and_the_table_and_keeps_the_lora(
    tiny_draft, tmp_path
) -> None:
    from dataclasses import replace

    from smoothie_cli.cautious.probe import probe_for

    shipped = tmp_path / "shipped"
    old = {"dataset": "moderation-test", "sources": {"all": {"gate_f1": {"gate_f1": 0.5, "n": 4}}}}
    ship_adapter(tiny_draft, shipped, old)
    before = (shipped / "README.md").read_text()
    calibration = replace(GateCalibration.load(shipped), threshold=1.234)
    new = {"dataset": "moderation-test", "sources": {"all": {"gate_f1": {"gate_f1": 0.75, "n": 6}}}}
    for _ in range(2):  # twice: the refit paragraph is replaced, not repeated
        refresh_card_gate(shipped, calibration, probe_for(calibration, shipped), new)
    after = (shipped / "README.md").read_text()
    assert "exceeds 1.234" in after and "| all | — | — | 0.750 | — | — | 6 |" in after
    assert "| 0.500 |" not in after and after.count(PROBE_REFIT_MARK) == 1 and "jailbreak-synth" in after
    assert after.index(PROBE_REFIT_MARK) < after.index("## Training")
    kept = [
        line for line in before.split("\n") if line.startswith(("adapter_sha256", "## ", "200", "2 steps"))
    ]
    assert all(line in after.split("\n") for line in kept)
    assert card_sha256(shipped) == sha256_of(shipped / "adapter_model.safetensors")


def test_the_card_states_the_int8_threshold_once_quantize_has_calibrated_it(tiny_draft, tmp_path) -> None:
    shipped = tmp_path / "shipped"
    ship_adapter(tiny_draft, shipped)
    before = (shipped / "README.md").read_text()
    int8_line = next(line for line in before.split("\n") if line.startswith("`gate-int8.json`"))
    assert "exceeds" not in int8_line  # not calibrated yet: ship runs before quantize
    int8 = GateCalibration(-1.25, 0.03, {"f1": 0.8, "recall": 0.7, "over_refusal": 0.01})
    update_card_int8(shipped, int8)
    after = (shipped / "README.md").read_text()
    assert "exceeds -1.250" in after and "F1 0.800" in after

    def others(card: str) -> list[str]:
        return [line for line in card.split("\n") if not line.startswith("`gate-int8.json`")]

    assert others(after) == others(before)  # only that paragraph changed
    assert card_sha256(shipped) == sha256_of(shipped / "adapter_model.safetensors")
    # a draft calibrated for int8 before shipping carries its line onto the card at once
    copy = tmp_path / "trained"
    import shutil

    shutil.copytree(tiny_draft, copy)
    save_reading(int8, copy)
    ship_adapter(copy, tmp_path / "again")
    assert "exceeds -1.250" in (tmp_path / "again" / "README.md").read_text()


def _benchmark(name: str) -> Any:
    """A module of benchmarks/ (research helpers live beside the benchmark that uses them)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_int8_keeping_top_layers_and_own_calibration(tiny_draft, tmp_path) -> None:
    quantize_keeping_top = _benchmark("gate_int8").quantize_keeping_top
    source = resolve_model(str(tiny_draft))
    tokenizer = load_tokenizer(source)
    full = load_model(source, device="cpu").merge_and_unload()
    reference = tag_margins(full, tokenizer, PROMPTS)
    import copy

    kept = quantize_keeping_top(copy.deepcopy(full), keep=1, keep_lm_head=True)
    assert type(kept.model.layers[-1].mlp.down_proj) is torch.nn.Linear  # the top layer stays float32
    assert type(kept.model.layers[0].mlp.down_proj) is not torch.nn.Linear  # the rest is int8
    assert type(kept.lm_head) is torch.nn.Linear
    everything = quantize_keeping_top(copy.deepcopy(full), keep=len(full.model.layers), keep_lm_head=True)
    assert tag_margins(everything, tokenizer, PROMPTS) == pytest.approx(reference, abs=1e-4)
    int8 = quantize_keeping_top(copy.deepcopy(full), keep=0)
    assert type(int8.lm_head) is not torch.nn.Linear
    labels = ["toxic", "safe"] * 20
    calibration = calibrate_reading(int8, tokenizer, PROMPTS * 20, labels, confidence=None)
    assert calibration.validation["n"] == 40
    written = save_reading(calibration, tmp_path)
    path = tmp_path / INT8_CALIBRATION_FILE
    assert json.loads(path.read_text())["threshold"] == calibration.threshold
    assert GateCalibration.load(tmp_path, INT8_CALIBRATION_FILE) == written
    assert written.quantization == "int8-per-token"


@pytest.mark.slow
def test_quantize_gives_a_probe_draft_its_own_int8_probe_and_the_int8_draft_loads_it(
    tiny_draft, tmp_path
) -> None:
    import shutil

    from smoothie_cli.cautious.layout import PROBE_INT8_FILE
    from smoothie_cli.cautious.loading import load_draft
    from smoothie_cli.cautious.probe import GateProbe
    from smoothie_cli.cautious.quantize import write_int8_reading

    draft = tmp_path / "draft"
    shutil.copytree(tiny_draft, draft)
    calibration = write_int8_reading(draft)
    assert calibration.reading == "probe" and (draft / PROBE_INT8_FILE).is_file()
    assert GateCalibration.load(draft, INT8_CALIBRATION_FILE) == calibration
    own = GateProbe.load(draft, PROBE_INT8_FILE)
    tokenizer = load_tokenizer(resolve_model(str(draft)))
    int8 = load_draft(str(draft), tokenizer, "cpu", "float32", "int8")
    assert int8.gate_threshold == calibration.threshold
    assert torch.equal(int8.gate_probe.probe.weight, own.probe.weight)  # its own probe, not float32's
    full = load_draft(str(draft), tokenizer, "cpu", "float32", "none")
    assert full.gate_threshold == GateCalibration.load(draft).threshold
    assert torch.equal(full.gate_probe.probe.weight, GateProbe.load(draft).probe.weight)
    reader = int8.reader(tokenizer)
    assert reader.probe is int8.gate_probe and reader.threshold == int8.gate_threshold
    # a stale int8 reading of another kind is ignored, not applied to the probe
    save_reading(GateCalibration(0.5, 0.03, {}, "margin"), draft)
    assert load_draft(str(draft), tokenizer, "cpu", "float32", "int8").gate_threshold == full.gate_threshold


def test_the_hidden_draft_commands_ship_and_describe_a_draft(tiny_draft, tmp_path, cli) -> None:
    """`smoothie draft ship` (what `make gate-draft` runs) writes the shipped copy and prints its sha256 as
    JSON; `smoothie draft card` refuses a draft without a probe gate in one line; neither is in --help."""
    code, out, err = cli(["draft", "ship", str(tiny_draft), str(tmp_path / "shipped")])
    assert code == 0 and json.loads(out)["sha256"] == card_sha256(tmp_path / "shipped")
    assert "pin this sha256" in err
    (tmp_path / "scores.json").write_text('{"dataset": "d", "sources": {}}')
    code, _, err = cli(["draft", "card", str(tmp_path), str(tmp_path / "scores.json")])
    assert code == 2 and "has no probe gate" in err and "Traceback" not in err
    code, out, _ = cli(["--help"])
    assert code == 0 and "refit-probe" not in out and "│ draft " not in out
