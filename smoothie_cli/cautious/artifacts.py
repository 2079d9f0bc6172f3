"""A calibrated draft and its files, loaded in one place: the model, its tokenizer, and the calibration and
probe a reading of it uses (file names: layout.py).

Which calibration applies depends on the reading: gate.json (+ gate-probe.safetensors) was calibrated on
the float32 draft's scores; gate-int8.json (+ gate-probe-int8.safetensors) on the int8 draft's own, and
applies when the int8 draft reads its own gate, the file is current (made with today's int8 scheme) and of
the same reading as gate.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.calibration import GateCalibration
from smoothie_cli.cautious.layout import INT8_CALIBRATION_FILE, PROBE_FILE, PROBE_INT8_FILE
from smoothie_cli.cautious.probe import GateProbe, probe_for
from smoothie_cli.errors import SmoothieError
from smoothie_cli.progress import Progress, no_progress


@dataclass(frozen=True)
class GateFiles:
    """The calibration a reading of a draft uses (None: read greedily) and the name of its probe file."""

    directory: Path | None
    calibration: GateCalibration | None
    probe_file: str = PROBE_FILE

    @property
    def int8(self) -> bool:
        """Whether these are the int8 draft's own files (gate-int8.json)."""
        return self.probe_file == PROBE_INT8_FILE

    def probe(self) -> GateProbe | None:
        """The probe the threshold applies to, or None for a margin (or greedy) gate."""
        if self.directory is None:
            return None
        return probe_for(self.calibration, self.directory, self.probe_file)


def gate_files(directory: str | Path | None, int8_reading: bool = False) -> GateFiles:
    """The gate files of the draft in `directory` (None: a draft with none, e.g. a hub id) for a float32
    reading, or (`int8_reading`) for the int8 draft reading its own gate."""
    if directory is None:
        return GateFiles(None, None)
    directory = Path(directory)
    calibration = GateCalibration.load(directory)
    if int8_reading:
        own = GateCalibration.load(directory, INT8_CALIBRATION_FILE)
        # one made for another reading (a margin threshold beside a probe gate.json) does not apply, nor one
        # fitted on the per-tensor int8 of before: then gate.json's reading applies (the float32 probe reads
        # per-token int8 features about as well, README); `smoothie draft calibrate-int8` writes a current one
        from smoothie_cli.models.int8 import SCHEME

        current = own is not None and own.quantization == SCHEME
        if current and (calibration is None or own.reading == calibration.reading):  # type: ignore[union-attr]
            return GateFiles(directory, own, PROBE_INT8_FILE)
    return GateFiles(directory, calibration)


@dataclass
class CalibratedDraft:
    """A draft loaded for reading (float32 on the CPU unless asked), with its tokenizer and gate files."""

    spec: str
    model: Any
    tokenizer: Any
    files: GateFiles

    @property
    def calibration(self) -> GateCalibration | None:
        return self.files.calibration

    def require_calibration(self) -> GateCalibration:
        """The calibration (open_draft with `needs` checked that there is one)."""
        if self.files.calibration is None:
            raise SmoothieError(f"'{self.spec}' has no gate.json; it needs a calibrated draft")
        return self.files.calibration

    def reader(self, **kwargs: Any) -> Any:
        """The GateReader of this draft's calibrated reading (greedy when it has none)."""
        from smoothie_cli.cautious.gate import GateReader

        threshold = self.calibration.threshold if self.calibration else None
        return GateReader(self.model, self.tokenizer, threshold=threshold, probe=self.files.probe(), **kwargs)


def open_draft(
    spec: str,
    progress: Progress = no_progress,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    needs: str | None = None,
) -> CalibratedDraft:
    """Load the draft `spec` (a directory, a PEFT adapter, embedded:NAME, a hub id) with its gate files;
    with `needs` (what needs it, for the message), fail before loading when it has no calibration."""
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(spec)
    directory = source.location if source.kind in ("local", "peft") else None
    files = gate_files(directory)
    if needs is not None and files.calibration is None:
        raise SmoothieError(f"'{spec}' has no gate.json; {needs} need a calibrated draft")
    tokenizer = loading.load_tokenizer(source, progress)
    model = loading.load_model(source, device=device, dtype=dtype, progress=progress)
    return CalibratedDraft(source.spec, model, tokenizer, files)
