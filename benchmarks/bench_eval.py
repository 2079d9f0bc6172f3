"""Benchmark: batched vs one-at-a-time generation, and a sweep vs separate smooth + eval runs.

1. prompts/s of `ModelGenerator` at batch size B against batch size 1, same prompts, same model, one process
   (goal ≥ 3×).
2. A 5-setting sweep (one model load, run-time scales) against 5 × (`smoothie smooth` + `smoothie eval` on the
   written checkpoint), same tasks and prompts, wall time.

    python benchmarks/bench_eval.py [--prompts 16] [--batch-size 8] [--max-new-tokens 32] [--skip-sweep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"
SETTINGS = ["1.0", "0.8", "0.6", "0.5", "0.3"]


def generation_rates(prompts: int, batch_size: int, max_new_tokens: int) -> list[list[str]]:
    from smoothie_cli.data.datasets import load_dataset
    from smoothie_cli.generation.batched import ModelGenerator
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(MODEL)
    model = loading.load_model(source, device="cpu")
    tokenizer = loading.load_tokenizer(source)
    examples = load_dataset("chinese-elicit", limit=prompts, seed=1).examples
    rows, answers = [], {}
    for size in (1, batch_size):
        generator = ModelGenerator(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=size)
        generator.generate(examples[:2])  # warm-up
        start = time.perf_counter()
        answers[size] = generator.generate(examples)
        seconds = time.perf_counter() - start
        rows.append([f"batch size {size}", f"{seconds:.1f}", f"{len(examples) / seconds:.2f}"])
    same = sum(a == b for a, b in zip(answers[1], answers[batch_size]))
    base = float(rows[0][2])
    rows[0].append("1.00×")
    rows[1].append(f"{float(rows[1][2]) / base:.2f}×")
    rows[1][0] += f" (same answers as batch 1: {same}/{len(examples)})"
    return rows


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def sweep_vs_separate(prompts: int, max_new_tokens: int) -> list[list[str]]:
    smoothie = [sys.executable, "-m", "smoothie_cli"]
    common = ["--task", "no-chinese", "--dataset", "chinese-elicit", "--limit", str(prompts),
              "--max-new-tokens", str(max_new_tokens)]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        sweep_s = run(
            [*smoothie, "sweep", MODEL, "--min-scale", ",".join(SETTINGS), *common, "-o", str(scratch / "s")]
        )
        separate_s = 0.0
        for value in SETTINGS:
            out = scratch / f"m{value}"
            separate_s += run([*smoothie, "smooth", MODEL, "--min-scale", value, "-o", str(out)])
            separate_s += run([*smoothie, "eval", str(out), *common, "--json"])
            shutil.rmtree(out)
    return [
        [f"{len(SETTINGS)} separate smooth + eval runs", f"{separate_s:.1f}", "1.00×"],
        [f"one sweep, {len(SETTINGS)} settings", f"{sweep_s:.1f}", f"{separate_s / sweep_s:.2f}×"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    console = Console(width=130)
    table = Table(
        title=f"generation: {args.prompts} chinese-elicit prompts × {args.max_new_tokens} new tokens, {MODEL}"
    )
    for column in ("run", "seconds", "prompts/s", "speed-up"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in generation_rates(args.prompts, args.batch_size, args.max_new_tokens):
        table.add_row(*row)
    console.print(table)
    if args.skip_sweep:
        return
    table = Table(
        title=f"sweep vs separate runs: min_scale {', '.join(SETTINGS)}, {args.prompts} prompts each"
    )
    for column in ("run", "seconds", "speed-up"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in sweep_vs_separate(args.prompts, args.max_new_tokens):
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
