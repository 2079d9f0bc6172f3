"""Benchmark: what reading a whole conversation costs the gate, at 1, 4 and 16 turns.

The shipped draft's gate as `speculate` and `serve` read it on a CPU (the int8 draft reading its own probe),
one request at a time. Conversations are real multi-turn chats: MT-Bench questions with their reference
answers as the assistant's turns and FAQ questions with theirs, cycled to the turn count; the last message
is a short follow-up. Turns counts user and assistant messages before the last one (1: a single message).
Rows alternate by repetition so background load hits every row alike; the median of `--repeats`.

Printed: gate tokens read (the whole within the budget, conversation.py INPUT_BUDGET, plus the parts read
alone: conversation.parts), median ms per request and the
ratio to a single message, and peak RSS of the process. Goal: one prefill of the draft per request, whatever
the history (the budget bounds it).

    python benchmarks/bench_gate_turns.py [--repeats 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from typing import Any

from rich.console import Console
from rich.table import Table

DRAFT = "embedded:qwen2.5-coder-0.5b-cautious"
TURNS = (1, 4, 16)


def history_pairs() -> list[tuple[str, str]]:
    """(question, answer) pairs from MT-Bench (reference answers) and the FAQ."""
    from smoothie_cli.data.datasets import load_dataset

    pairs = [(e.prompt, e.reference) for e in load_dataset("mtbench-ref").examples if e.reference]
    pairs += [(e.prompt, e.reference) for e in load_dataset("faq").examples[:40] if e.reference]
    return pairs


def conversation(turns: int, pairs: list[tuple[str, str]], offset: int) -> list[dict[str, str]]:
    if turns == 1:
        return [{"role": "user", "content": pairs[offset % len(pairs)][0]}]
    messages: list[dict[str, str]] = []
    index = offset
    while len(messages) < turns:
        question, answer = pairs[index % len(pairs)]
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        index += 1
    return [*messages[:turns], {"role": "user", "content": "Thanks, can you say more about that?"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    from smoothie_cli.cautious.loading import load_draft
    from smoothie_cli.models import resolve_model
    from smoothie_cli.models.loading import load_tokenizer

    tokenizer = load_tokenizer(resolve_model(DRAFT))
    reader = load_draft(DRAFT, tokenizer, "cpu", "float32", "auto").reader(tokenizer)
    pairs = history_pairs()
    reader.read_one("Hello")  # first-call costs (the instruction's cache) stay out of the timings
    times: dict[int, list[float]] = {t: [] for t in TURNS}
    tokens: dict[int, list[int]] = {t: [] for t in TURNS}
    for repeat in range(args.repeats):
        for turns in TURNS:
            messages = conversation(turns, pairs, repeat)
            read = reader.reading.conversations.parts(messages)  # the whole, then requests alone
            tokens[turns].append(sum(len(reader.reading.encode(part)) for part in read))
            start = time.perf_counter()
            reader.read_one(messages)
            times[turns].append(time.perf_counter() - start)
    base = statistics.median(times[1])
    rows: list[dict[str, Any]] = [
        {"turns": t, "gate_tokens": round(statistics.median(tokens[t])),
         "ms": round(1000 * statistics.median(times[t]), 1),
         "ratio": round(statistics.median(times[t]) / base, 2)}
        for t in TURNS
    ]  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    table = Table(title=f"gate cost per request, {reader.summary()} ({args.repeats} repeats)")
    for column in ("turns", "gate tokens", "ms / request", "× 1 message"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["turns"]), str(row["gate_tokens"]), f"{row['ms']:.1f}", f"{row['ratio']:.2f}")
    console = Console(width=80)
    console.print(table)
    console.print(f"peak RSS {peak:.2f} GB; one batched draft prefill per request (the whole and its parts)")
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump(
                {"rows": rows, "peak_rss_gb": round(peak, 2), "reader": reader.summary()}, handle, indent=2
            )


if __name__ == "__main__":
    main()
