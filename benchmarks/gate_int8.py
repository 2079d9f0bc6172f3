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

from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("draft", nargs="?", default="embedded:qwen2.5-coder-0.5b-cautious")
    parser.add_argument("--keep", type=int, nargs="*", default=[0, 4, 8])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from smoothie_cli.cautious.quantize import compare_readings

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
