"""One draft, one reading: an int8 draft that reads its own `<Toc>`/`<Safe>` tag as well as float32 does.

An int8 draft on a CPU would otherwise keep a float32 copy to read its tag (+2 GB on the 0.5B), because its
threshold was calibrated on float32 scores. `calibrate_reading` keeps the draft fully int8 and chooses the
threshold on *its own* scores, saved next to gate.json as `gate-int8.json` (same format): the int8 ranking
of prompts is close to float32's (the AUC), the offset of the scores is what moves, and a threshold fitted
on the int8 scores absorbs it. `write_int8_reading` (`smoothie draft calibrate-int8`) does it for a draft
directory. benchmarks/gate_int8.py measures the readings against each other (and int8 drafts that keep
their top layers in float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.calibration import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_OVER_REFUSAL,
    GateCalibration,
    calibrate,
)
from smoothie_cli.cautious.layout import INT8_CALIBRATION_FILE, PROBE_INT8_FILE
from smoothie_cli.cautious.loading import load_draft
from smoothie_cli.cautious.probe import calibrate_probe
from smoothie_cli.cautious.reading import tag_margins
from smoothie_cli.cautious.ship import update_card_int8
from smoothie_cli.progress import Progress, no_progress


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


def write_int8_reading(directory: Path, progress: Progress = no_progress) -> GateCalibration:
    """Calibrate the int8 draft's own reading of the calibrated draft in `directory` (as `speculate` loads
    it on a CPU) and write gate-int8.json there: for a probe gate, a probe fitted and cross-fitted on the int8
    features of the train split (gate-probe-int8.safetensors); for a margin gate, the threshold on the int8
    margins of the calibration split. `make gate-draft` runs it on the shipped copy."""
    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.data.moderation import calibration_split, moderation_dataset
    from smoothie_cli.models import loading, resolve_model

    tokenizer = loading.load_tokenizer(resolve_model(str(directory)), progress)
    # the int8 model only: the reading it has now (gate-int8.json, perhaps stale) is what is being replaced
    draft = load_draft(str(directory), tokenizer, "cpu", "float32", "int8", progress, "greedy", "draft")
    stored = GateCalibration.load(directory)
    if stored is not None and stored.reading == "probe":  # its own probe, fitted on its own features
        probe, calibration = calibrate_probe(draft.model, tokenizer, moderation_dataset("train").examples,
                                             progress=progress)  # fmt: skip
        probe.save(Path(directory), PROBE_INT8_FILE)
    else:
        _, held = calibration_split(
            moderation_dataset("train").examples, FinetuneSettings(base="").calibration_percent
        )
        calibration = calibrate_reading(draft.model, tokenizer, [e.messages() for e in held],
                                        [e.label or "safe" for e in held], progress=progress)  # fmt: skip
    calibration = save_reading(calibration, Path(directory))
    update_card_int8(Path(directory), calibration)
    return calibration
