"""Measure: the gate read by the int8 draft itself vs by float32, on the moderation test split.

For a calibrated draft (default: the shipped embedded:qwen2.5-coder-0.5b-cautious), each reading — float32,
int8 (per-channel dynamic, every Linear), int8 with the top N decoder layers kept in float32 — gives its tag
margins on moderation-test: ROC AUC, the decision with the float32 gate.json threshold, and the decision
with a threshold calibrated on that reading's own margins over the calibration split (never the test split).
Quality, not speed: the int8 variants' decoding speed is measured by bench_speculate.

    python benchmarks/gate_int8.py [DRAFT] [--keep 0 4 8] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from smoothie_cli.progress import Progress, no_progress


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


def compare_readings(
    spec: str,
    keeps: Sequence[int] = (0, 4, 8),
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """float32 vs int8 readings of a calibrated draft: AUC on the moderation test split, and the test
    decision with the float32 threshold and with a threshold calibrated on that reading's own margins
    over the calibration split (the test split chooses nothing)."""
    import copy

    from smoothie_cli.cautious.artifacts import open_draft
    from smoothie_cli.cautious.calibration import roc_auc
    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.cautious.holdout import scores_from_margins
    from smoothie_cli.cautious.quantize import calibrate_reading
    from smoothie_cli.cautious.reading import tag_margins
    from smoothie_cli.data.moderation import calibration_split, moderation_dataset
    from smoothie_cli.errors import SmoothieError

    draft = open_draft(spec, progress, needs="comparing readings")
    stored = draft.require_calibration()
    if stored.reading != "margin":
        raise SmoothieError(
            f"'{spec}' gates with a {stored.reading}; this compares tag-margin readings (the probe's int8 "
            "reading is calibrated by `smoothie draft calibrate-int8 DIR`)"
        )
    tokenizer, full = draft.tokenizer, draft.model
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("draft", nargs="?", default="embedded:qwen2.5-coder-0.5b-cautious")
    parser.add_argument("--keep", type=int, nargs="*", default=[0, 4, 8])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    result = compare_readings(args.draft, args.keep)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"gate readings of {args.draft} on moderation-test")
    for column in ("reading", "AUC", "F1 @ fp32 thr", "over-refusal @ fp32 thr", "own thr", "F1 @ own",
                   "recall @ own", "over-refusal @ own"):  # fmt: skip
        table.add_column(column)
    for name, reading in result["readings"].items():
        fixed, own = reading["float32_threshold"], reading["own_calibration"]
        table.add_row(
            name, f"{reading['auc']:.4f}", f"{fixed['gate_f1']['gate_f1']:.3f}",
            f"{fixed['over_refusal']['over_refusal']:.3f}", f"{reading['own_threshold']:.3f}",
            f"{own['gate_f1']['gate_f1']:.3f}", f"{own['gate_recall']['gate_recall']:.3f}",
            f"{own['over_refusal']['over_refusal']:.3f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
