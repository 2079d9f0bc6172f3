"""Turn a `finetune-draft` output into the adapter that ships inside the package (`embedded:…-cautious`).

The LoRA weights are stored in float16 (half the bytes; a LoRA delta is small, far from float16's range,
and the calibrated margins move by ~1e-3, far below the threshold's spacing), with the adapter config,
gate.json (the calibrated threshold) and a card: data, steps, settings, metrics and the sha256 of the
weights, which `smoothie_cli.models.embedded` pins and checks on every load.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from smoothie_cli.atomic import atomic_directory, write_text_atomic
from smoothie_cli.cautious.calibration import GateCalibration
from smoothie_cli.cautious.layout import (
    ADAPTER_CONFIG,
    CALIBRATION_FILE,
    CARD,
    INT8_CALIBRATION_FILE,
    METRICS,
    PROBE_FILE,
    PROBE_INT8_FILE,
    WEIGHTS,
    card_front_matter,
)
from smoothie_cli.cautious.probe import GateProbe, probe_for
from smoothie_cli.errors import SmoothieError


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def card_sha256(directory: Path) -> str | None:
    """The weights' sha256 as the card states it (front matter `adapter_sha256:`)."""
    for line in (Path(directory) / CARD).read_text(encoding="utf-8").splitlines():
        if line.startswith("adapter_sha256:"):
            return line.split(":", 1)[1].strip()
    return None


def ship_adapter(trained: Path, destination: Path, scores: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the shipped copy of the adapter in `trained` to `destination` (replaced atomically).

    `scores`: a `gate-report --json` document (per-source scores on the test split) for the card."""
    import torch
    from safetensors.torch import load_file, save_file

    trained, destination = Path(trained), Path(destination)
    for name in (ADAPTER_CONFIG, WEIGHTS, CALIBRATION_FILE, METRICS):
        if not (trained / name).is_file():
            raise SmoothieError(f"{trained} has no {name}; pass a finetune-draft output directory")
    report = json.loads((trained / METRICS).read_text())
    calibration = GateCalibration.load(trained)
    assert calibration is not None  # gate.json is there (checked above)
    probe = probe_for(calibration, trained)  # a probe gate's probe must be there, whole
    tensors = {
        k: v.to(torch.float16) if v.is_floating_point() else v
        for k, v in load_file(trained / WEIGHTS).items()
    }
    with atomic_directory(destination, replace=True) as temp:
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(temp / WEIGHTS), metadata={"format": "pt"}
        )
        shutil.copy(trained / ADAPTER_CONFIG, temp / ADAPTER_CONFIG)
        shutil.copy(trained / CALIBRATION_FILE, temp / CALIBRATION_FILE)
        if probe is not None:  # the probe the threshold applies to (probe.py)
            shutil.copy(trained / PROBE_FILE, temp / PROBE_FILE)
            (temp / PROBE_FILE).chmod(0o644)
        for name in (INT8_CALIBRATION_FILE, PROBE_INT8_FILE):  # the int8 draft's own reading (quantize.py)
            if (trained / name).is_file():
                shutil.copy(trained / name, temp / name)
        (temp / WEIGHTS).chmod(0o644)  # package data: readable by every user of an install
        digest = sha256_of(temp / WEIGHTS)
        int8 = GateCalibration.load(trained, INT8_CALIBRATION_FILE)
        (temp / CARD).write_text(_card(report, digest, calibration, probe, int8, scores), encoding="utf-8")
    return {
        "destination": str(destination),
        "sha256": digest,
        "bytes": (destination / WEIGHTS).stat().st_size,
    }


def int8_card_line(int8: GateCalibration | None) -> str:
    """The card's paragraph on gate-int8.json: how it is made and, once it is, what it holds."""
    line = (
        f"`{INT8_CALIBRATION_FILE}` (written by `smoothie draft calibrate-int8 DIR`, `make "
        "gate-draft`): the same calibration on the scores of the int8 draft that `speculate` and `serve` "
        f"run on a CPU (with a probe gate: its own probe, `{PROBE_INT8_FILE}`, fitted on the int8 features), "
        "used when it reads its own gate (the default)"
    )
    return f"{line}: {int8.describe()}." if int8 is not None else f"{line}."


def update_card_int8(directory: Path, int8: GateCalibration) -> None:
    """Rewrite the gate-int8.json paragraph of the card in `directory` (quantize runs after ship)."""
    card = Path(directory) / CARD
    if not card.is_file():
        return
    marker = f"`{INT8_CALIBRATION_FILE}`"
    lines = [
        int8_card_line(int8) if line.startswith(marker) else line for line in card.read_text().split("\n")
    ]
    write_text_atomic(card, "\n".join(lines))


PROBE_REFIT_MARK = "Probe refitted"  # the card's paragraph on a probe refitted after the LoRA was trained


def refresh_card_gate(
    directory: Path, calibration: GateCalibration, probe: GateProbe, scores: dict[str, Any] | None
) -> None:
    """Rewrite the card in `directory` after its probe was refitted on the current train split
    (`make gate-probe`): the gate.json paragraph, a paragraph saying which split the probe and which the
    LoRA saw, and the per-source table. The LoRA, its training paragraph and its sha256 are unchanged."""
    from smoothie_cli.data.moderation import SOURCES

    card = Path(directory) / CARD
    if not card.is_file():
        raise SmoothieError(f"{directory} has no {CARD}; ship the draft first (make gate-draft)")
    lines = card.read_text(encoding="utf-8").split("\n")
    marker = next((i for i, line in enumerate(lines) if line.startswith("On moderation-test")), len(lines))
    lines = [line for line in lines[:marker] if not line.startswith(PROBE_REFIT_MARK)]
    lines = [f"`gate.json`: {calibration.describe()}." if line.startswith("`gate.json`") else line
             for line in lines]  # fmt: skip
    data = next(i for i, line in enumerate(lines) if line.startswith("## Training"))
    refit = (
        f"{PROBE_REFIT_MARK} on the current moderation train split (sources {', '.join(SOURCES)}) by "
        f"`make gate-probe`: {probe.describe_head()} with its {len(probe.folds)} fold probes. It reads "
        "layers below the LoRA, so it does not depend on the adapter; the LoRA is the one trained on the "
        "split named above."
    )
    lines[data:data] = [refit, ""]
    while lines and not lines[-1]:
        lines.pop()
    write_text_atomic(card, "\n".join([*lines, "", *_scores_table(scores)]))


def _scores_table(scores: dict[str, Any] | None) -> list[str]:
    if not scores:
        return []
    lines = [
        f"On {scores['dataset']} (float32 reading), per source:",
        "",
        "| source | precision | recall | F1 | over-refusal | AUPRC | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, metrics in scores["sources"].items():
        keys = ("gate_precision", "gate_recall", "gate_f1", "over_refusal", "gate_auprc")
        cells = [_cell(metrics.get(k, {}).get(k)) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {metrics['gate_f1']['n']} |")
    return [*lines, ""]


def _card(
    report: dict[str, Any],
    digest: str,
    calibration: GateCalibration,
    probe: GateProbe | None,
    int8: GateCalibration | None,
    scores: dict[str, Any] | None,
) -> str:
    from smoothie_cli.data.moderation import SOURCE_CAP, SOURCE_CAPS, SOURCES

    settings = report["settings"]
    lines = [
        *card_front_matter(report["base"], digest),
        "",
        "# qwen2.5-coder-0.5b-cautious (ships with smoothie)",
        "",
        f"LoRA adapter (rank {settings['rank']}, top {settings['layers']} layers, float16) on "
        f"`{report['base']}` that opens every answer with `<Toc>` (toxic request, jailbreak or prompt "
        "injection aimed at the assistant) or `<Safe>`. Resolve it as "
        "`embedded:qwen2.5-coder-0.5b-cautious`; `make gate-draft` reproduces it.",
        "",
        "## Data",
        "",
        f"smoothie's moderation train split (hash split of the text; test split never used to choose "
        f"anything): sources {', '.join(SOURCES)}; at most {SOURCE_CAP} prompts per source "
        f"({', '.join(f'{k} {v}' for k, v in SOURCE_CAPS.items())}), balanced toxic/safe. "
        + (
            f"The gate probe (`{PROBE_FILE}`: {probe.describe_head()} on the draft's hidden states, "
            f"{probe.spec.describe()}, below the LoRA, plus its {len(probe.folds)} fold probes) is fitted "
            "on the whole train split and its threshold chosen on out-of-fold scores; the "
            f"LoRA trains on the rest after {settings['calibration_percent']}% "
            f"({report['calibration_examples']} prompts) is held out. "
            if probe is not None
            else f"{settings['calibration_percent']}% of the train split ({report['calibration_examples']} "
            "prompts) is held out to calibrate the threshold. "
        )
        + "Versions and sha256 of every source file: `smoothie_cli/data/catalogue.py`.",
        "",
        "## Training",
        "",
        f"{report['steps']} steps × {settings['batch_size']} ({report['train_examples']} training examples), "
        f"lr {settings['lr']}, max length {settings['max_length']}, seed {settings['seed']}; "
        f"{report['train_seconds']} s of training on a 2-core CPU; final loss {report['final_loss']:.4f}.",
        "",
        "## Gate",
        "",
        f"`gate.json`: {calibration.describe()}.",
        "",
        int8_card_line(int8),
        "",
    ]
    test_examples = report.get("test_examples") or 0
    if any(report["metrics"].values()):
        lines += [
            f"finetune-draft's own scores on {test_examples} prompts of moderation-test (a seeded sample):",
            "",
            "| reading | precision | recall | F1 | over-refusal | AUPRC | AUC |",
            "|---|---|---|---|---|---|---|",
        ]
        keys = ("gate_precision", "gate_recall", "gate_f1", "over_refusal", "gate_auprc", "gate_auc")
        for name, metrics in report["metrics"].items():
            if metrics:
                cells = [_cell(metrics.get(k, {}).get(k)) for k in keys]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines + _scores_table(scores))


def _cell(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.3f}"


def refresh_probe_card(directory: Path, scores: dict[str, Any]) -> None:
    """After a probe refit in place (`make gate-probe`): rewrite the card of the shipped draft in
    `directory` from its gate files and the per-source `scores`."""
    calibration = GateCalibration.load(directory)
    probe = probe_for(calibration, directory)
    if calibration is None or probe is None:
        raise SmoothieError(f"{directory} has no probe gate to describe; refit its probe first")
    refresh_card_gate(directory, calibration, probe, scores)
