"""Benchmark: HumanEval (generation + sandboxed tests) at batch size 1 against the default batch, same
problems, same model, one process; the pass@1 of each run should be the same (greedy).

    python benchmarks/bench_humaneval.py [--problems 16] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from smoothie_cli.config import SmoothieConfig
    from smoothie_cli.data.datasets import load_dataset
    from smoothie_cli.evaluation.session import open_session
    from smoothie_cli.evaluation.tasks import get_task

    session = open_session(MODEL, SmoothieConfig(), device="cpu", batch_size=args.batch_size)
    dataset = load_dataset("humaneval", limit=args.problems, seed=0)
    rows, seconds = [], {}
    for size in (1, args.batch_size):
        session.context.generator.batch_size = size  # type: ignore[attr-defined]
        session.context.options.pop("answer_cache", None)  # generate again
        start = time.perf_counter()
        result = get_task("humaneval").run(session.context, dataset)
        seconds[size] = time.perf_counter() - start
        rows.append([f"batch size {size}", f"{seconds[size]:.1f}", f"{result.scores['pass@1'].value:.3f}"])
    rows[0].append("1.00×")
    rows[1].append(f"{seconds[1] / seconds[args.batch_size]:.2f}×")
    table = Table(title=f"HumanEval, {args.problems} problems, {MODEL} (CPU)")
    for column in ("run", "seconds", "pass@1", "speed-up"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
