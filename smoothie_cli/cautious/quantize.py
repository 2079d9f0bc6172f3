"""One draft, one reading: an int8 draft that reads its own `<Toc>`/`<Safe>` tag as well as float32 does.

Today an int8 draft on a CPU keeps a float32 copy to read its tag (+2 GB on the 0.5B), because its
threshold was calibrated on float32 margins. Two ways to do without it, both measured by
`compare_readings` on held-out prompts (AUC and the calibrated decision on the test split):

- `quantize_keeping_top`: int8 (per-token, models/int8.py) every Linear except those of the top `keep` decoder
  layers and, optionally, lm_head, which stay in float32 (the LoRA adapts the top layers; the tag is read
  from the last hidden state). It costs decoding speed: float32 layers move 4× the bytes per weight.
- `calibrate_reading`: keep the draft fully int8 and choose the threshold on *its own* margins over the
  calibration split, saved next to gate.json as `gate-int8.json` (same format). The int8 ranking of prompts
  is close to float32's (the AUC), the offset of the margins is what moves; a threshold fitted on the int8
  margins absorbs that offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.gate import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_OVER_REFUSAL,
    GateCalibration,
    calibrate,
    roc_auc,
    tag_margins,
)
from smoothie_cli.progress import Progress, no_progress

INT8_CALIBRATION_FILE = "gate-int8.json"  # beside gate.json: the threshold for the int8 draft's own margins


def quantize_keeping_top(model: Any, keep: int = 0, keep_lm_head: bool = False) -> Any:
    """An int8 (per-channel weights, per-token activations) copy of `model` on the CPU; the top `keep`
    decoder layers (and lm_head when `keep_lm_head`) stay float32. Merges a PEFT adapter; changes `model`."""

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.float().eval()
    layers = model.model.layers
    kept = {f"model.layers.{i}" for i in range(len(layers) - keep, len(layers))} if keep > 0 else set()
    if keep_lm_head:
        kept.add("lm_head")
    from smoothie_cli.models.int8 import quantize_linears

    return quantize_linears(model, kept)


def calibrate_reading(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    labels: Sequence[str],
    *,
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL,
    confidence: float | None = DEFAULT_CONFIDENCE,
    progress: Progress = no_progress,
) -> GateCalibration:
    """A threshold for this model's own margins (e.g. the int8 draft) on the calibration prompts."""
    margins = tag_margins(
        model, tokenizer, prompts, progress=progress, description="calibrating this reading"
    )
    return calibrate(margins, labels, max_over_refusal, confidence)


def save_reading(calibration: GateCalibration, directory: Path) -> GateCalibration:
    """Write `calibration` as gate-int8.json in the adapter directory (the format of gate.json), marked
    with the int8 scheme its scores came from; returns what was written."""
    from smoothie_cli.models.int8 import SCHEME

    marked = replace(calibration, quantization=SCHEME)
    marked.save(directory, INT8_CALIBRATION_FILE)
    return marked


def compare_readings(
    spec: str,
    keeps: Sequence[int] = (0, 4, 8),
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """float32 vs int8 readings of a calibrated draft: AUC on the moderation test split, and the test
    decision with the float32 threshold and with a threshold calibrated on that reading's own margins
    over the calibration split (the test split chooses nothing)."""
    import copy

    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.cautious.holdout import scores_from_margins
    from smoothie_cli.data.moderation import calibration_split, moderation_dataset
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(spec)
    stored = GateCalibration.load(source.location)
    if stored is None:
        from smoothie_cli.errors import SmoothieError

        raise SmoothieError(f"'{spec}' has no gate.json; compare readings of a calibrated draft")
    if stored.reading != "margin":
        from smoothie_cli.errors import SmoothieError

        raise SmoothieError(
            f"'{spec}' gates with a {stored.reading}; this compares tag-margin readings (the probe's int8 "
            "reading is calibrated by `python -m smoothie_cli.cautious.quantize DIR`)"
        )
    tokenizer = loading.load_tokenizer(source, progress)
    full = loading.load_model(source, device="cpu", dtype="float32", progress=progress)
    full = full.merge_and_unload() if hasattr(full, "merge_and_unload") else full
    percent = FinetuneSettings(base="").calibration_percent
    _, held = calibration_split(moderation_dataset("train").examples, percent)
    test = moderation_dataset("test").examples
    test_labels = [e.label or "safe" for e in test]
    toxic = [label == "toxic" for label in test_labels]
    held_labels = [e.label or "safe" for e in held]
    result: dict[str, Any] = {"draft": spec, "threshold_float32": stored.threshold, "readings": {}}
    for keep in (None, *keeps):  # one reading in memory at a time beside the float32 model
        name = "float32" if keep is None else f"int8 (top {keep} float32)" if keep else "int8"
        model = full if keep is None else quantize_keeping_top(copy.deepcopy(full), keep)
        margins = tag_margins(model, tokenizer, [e.prompt for e in test], progress=progress,
                              description=f"test margins, {name}")  # fmt: skip
        own = calibrate_reading(model, tokenizer, [e.prompt for e in held], held_labels, progress=progress)
        result["readings"][name] = {
            "auc": roc_auc(margins, toxic),
            "float32_threshold": scores_from_margins(test_labels, margins, stored.threshold),
            "own_threshold": own.threshold,
            "own_gate": {
                "threshold": own.threshold,
                "max_over_refusal": own.max_over_refusal,
                "validation": own.validation,
            },
            "own_calibration": scores_from_margins(test_labels, margins, own.threshold),
        }
    return result


def write_int8_reading(directory: Path, progress: Progress = no_progress) -> GateCalibration:
    """Calibrate the int8 draft's own reading of the calibrated draft in `directory` (as `speculate` loads
    it on a CPU) and write gate-int8.json there: for a probe gate, a probe fitted and cross-fitted on the int8
    features of the train split (gate-probe-int8.safetensors); for a margin gate, the threshold on the int8
    margins of the calibration split. `make gate-draft` runs it on the shipped copy."""
    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.cautious.loading import load_draft
    from smoothie_cli.data.moderation import calibration_split, moderation_dataset
    from smoothie_cli.models import loading, resolve_model

    tokenizer = loading.load_tokenizer(resolve_model(str(directory)), progress)
    # the int8 model only: the reading it has now (gate-int8.json, perhaps stale) is what is being replaced
    draft = load_draft(str(directory), tokenizer, "cpu", "float32", "int8", progress, "greedy", "draft")
    stored = GateCalibration.load(directory)
    if stored is not None and stored.reading == "probe":  # its own probe, fitted on its own features
        from smoothie_cli.cautious.probe import PROBE_INT8_FILE, calibrate_probe

        probe, calibration = calibrate_probe(draft.model, tokenizer, moderation_dataset("train").examples,
                                             progress=progress)  # fmt: skip
        probe.save(Path(directory), PROBE_INT8_FILE)
    else:
        _, held = calibration_split(
            moderation_dataset("train").examples, FinetuneSettings(base="").calibration_percent
        )
        calibration = calibrate_reading(draft.model, tokenizer, [e.prompt for e in held],
                                        [e.label or "safe" for e in held], progress=progress)  # fmt: skip
    from smoothie_cli.cautious.ship import update_card_int8  # ship imports this module

    calibration = save_reading(calibration, Path(directory))
    update_card_int8(Path(directory), calibration)
    return calibration


if __name__ == "__main__":  # python -m smoothie_cli.cautious.quantize DRAFT_DIR (make gate-draft)
    import json
    import sys
    from dataclasses import asdict

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m smoothie_cli.cautious.quantize DRAFT_DIR")
    print(json.dumps(asdict(write_int8_reading(Path(sys.argv[1]))), indent=2))
