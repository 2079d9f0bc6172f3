"""Benchmark: smoothie-qwen's sampled n-gram analysis against smoothie's exact one, on the same tokenizer.

The seed's analysis step (re-implemented from its description in ANCHORS.md): for each broken token, draw
candidates among the broken tokens and decode sampled n-grams with the tokenizer — 2-grams from
`sample_size` draws, 3-grams from √sample_size per position, 4-grams from ∛sample_size. Ours: the exact
edge-state sum. Also times the whole `smoothie analyze --window-size 4` command on the cached embedded model.

    python benchmarks/bench_analyze.py [--model embedded:qwen2.5-coder-0.5b-instruct] [--sample-size 1000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from smoothie_cli.config import SmoothieConfig
from smoothie_cli.models import resolve_model, tokenizer_location
from smoothie_cli.vocab.analysis import identify
from smoothie_cli.vocab.ngram import ExactNgram
from smoothie_cli.vocab.scripts import TargetScript
from smoothie_cli.vocab.tokens import load_vocabulary


def seed_sampled_analysis(
    tokenizer, broken: list[int], script: TargetScript, sample_size: int, max_ngram: int
):
    """The seed's algorithm: random candidates, decode every sampled n-gram, count target characters."""
    rng = np.random.default_rng()
    result: dict[int, dict[int, float]] = {}
    for token in broken:
        result[token] = {}
        candidates = rng.choice(broken, min(sample_size, len(broken)), replace=False)
        for n in range(2, max_ngram + 1):
            if n == 2:
                combos = [(token, int(c)) for c in rng.choice(candidates, len(candidates), replace=False)]
            elif n == 3:
                k = int(np.sqrt(len(candidates)))
                combos = [
                    (token, int(a), int(b))
                    for a in rng.choice(candidates, k, replace=False)
                    for b in rng.choice(candidates, k, replace=False)
                ]
            else:
                k = max(2, int(np.cbrt(len(candidates))))
                combos = [
                    (token, int(a), int(b), int(c))
                    for a in rng.choice(candidates, k, replace=False)
                    for b in rng.choice(candidates, k, replace=False)
                    for c in rng.choice(candidates, k, replace=False)
                ]
            hits = sum(script.has_target_char(tokenizer.decode(list(combo))) for combo in combos)
            result[token][n] = hits / len(combos)
    return result


def timed(fn, repeat: int = 1):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--sample-size", type=int, default=1000)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    console = Console(width=130)
    location = tokenizer_location(resolve_model(args.model))
    tokenizer = AutoTokenizer.from_pretrained(str(location))
    vocab = load_vocabulary(location)
    config = SmoothieConfig()
    script = TargetScript(config.blocks())
    ident = identify(vocab, script)
    fragments = [vocab.token_bytes[i] for i in ident.fragments]
    console.print(
        f"{args.model}: {vocab.size:,} tokens, {len(ident.target):,} target, {len(ident.broken):,} broken "
        f"({len(ident.fragments):,} fragments)"
    )

    rows = []
    for window in (2, 4):
        seed_s, seed = timed(
            lambda w=window: seed_sampled_analysis(tokenizer, ident.broken, script, args.sample_size, w)
        )
        windows = list(range(2, window + 1))
        ours_s, exact = timed(
            lambda w=windows: ExactNgram(fragments, script).probabilities(fragments, w), repeat=5
        )
        seed_mean = statistics.mean(seed[t][window] for t in ident.fragments)
        exact_mean = statistics.mean(exact[window])
        rows.append(
            (
                f"analysis step, window {window}",
                seed_s,
                ours_s,
                f"mean p{window}: {seed_mean:.4f} vs {exact_mean:.4f}",
            )
        )

    command = [sys.executable, "-m", "smoothie_cli", "analyze", args.model, "--window-size", "4", "--json"]
    subprocess.run(command, check=True, capture_output=True)  # warm the cache and the OS file cache
    whole_s, _ = timed(lambda: subprocess.run(command, check=True, capture_output=True), repeat=3)
    seed_w4 = rows[1][1]
    rows.append(
        ("whole `smoothie analyze --window-size 4` vs seed's step", seed_w4, whole_s, "process start to exit")
    )

    table = Table(title=f"analyze: seed (sampled, sample_size {args.sample_size}) vs smoothie (exact)")
    for name, justify in [
        ("what", "left"),
        ("seed s", "right"),
        ("smoothie s", "right"),
        ("speed-up", "right"),
        ("", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, seed_s, ours_s, extra in rows:
        table.add_row(name, f"{seed_s:.2f}", f"{ours_s:.3f}", f"{seed_s / ours_s:.1f}×", extra)
    console.print(table)
    console.print(
        "goals: analysis step ≥ 20× at window 4 "
        f"({'met' if rows[1][1] / rows[1][2] >= 20 else 'NOT met'}); whole command ≥ 8× the seed's step "
        f"({'met' if seed_w4 / whole_s >= 8 else 'NOT met'})"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
