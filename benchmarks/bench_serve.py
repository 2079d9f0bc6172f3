"""Benchmark: `smoothie serve` under 1, 4 and 16 concurrent OpenAI clients, side by side in one run.

The real command in a subprocess (default: the embedded pair — target Qwen2.5-Coder-1.5B-Instruct float32,
the 0.5B draft int8 with its float32 gate reader, gate on), 127.0.0.1, greedy, 64 new tokens. The prompts:
MT-Bench questions (one per category, round robin) and FAQ questions, half and half. Each row sends the same
prompts through the real `openai` client; every client sends its next prompt when its previous answer is
complete (closed loop). The first row answers them one after another (one client: speculation for a lone
request), the others with 4 and 16 clients (requests that arrive together are gated in one batch and
decoded together).

Columns: requests/s, completion tokens/s (and its ratio to one-at-a-time), p50/p95 latency, failed or lost
requests, and how many answers equal the one-at-a-time answer. Goal: at 16 clients ≥ 3× the tokens/s of
one-at-a-time serving, with no request lost or failed.

    python benchmarks/bench_serve.py [--prompts 16] [--max-tokens 64] [--clients 1,4,16] [-- SERVE OPTIONS]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]


def bench_prompts(count: int) -> list[str]:
    """`count` prompts: MT-Bench (a different category each time, round robin) and FAQ, alternating."""
    from smoothie_cli.data.datasets import load_dataset

    by_category: dict[str, list[str]] = {}
    for example in load_dataset("mtbench").examples:
        by_category.setdefault(example.meta.get("category", "?"), []).append(example.prompt)
    mtbench = [p for round_ in zip(*by_category.values()) for p in round_]
    faq = [e.prompt for e in load_dataset("faq").examples]
    return [(mtbench if n % 2 == 0 else faq)[n // 2] for n in range(count)]


def start_server(serve_args: Sequence[str], console: Console) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "smoothie_cli", "serve", "--port", "0", "--json", *serve_args]
    console.print(f"[dim]$ {' '.join(command[1:])}[/]")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"the server did not start (exit code {process.wait()})")
    info = json.loads(line)
    console.print(f"[dim]server: {info['url']} · gate: {info['gate_reading']} · target {info['target']}[/]")
    return process, info["url"]


def run_row(url: str, prompts: list[str], clients: int, max_tokens: int) -> dict[str, Any]:
    """Send every prompt once through `clients` concurrent clients; latency per request, totals per row."""
    import openai

    pending = list(enumerate(prompts))
    lock = threading.Lock()
    results: dict[int, dict[str, Any]] = {}

    def client_loop() -> None:
        client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0, timeout=3600)
        while True:
            with lock:
                if not pending:
                    return
                index, prompt = pending.pop(0)
            start = time.perf_counter()
            try:
                reply = client.chat.completions.create(
                    model="smoothie",
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=max_tokens,
                    temperature=0,
                )
                results[index] = {
                    "seconds": time.perf_counter() - start,
                    "tokens": reply.usage.completion_tokens,
                    "text": reply.choices[0].message.content,
                    "finish_reason": reply.choices[0].finish_reason,
                    "strategy": (reply.model_extra or {}).get("smoothie", {}).get("strategy"),
                }
            except Exception as error:  # counted as failed, the row goes on
                results[index] = {"error": f"{type(error).__name__}: {error}"}

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    done = [r for r in results.values() if "error" not in r]
    latencies = sorted(r["seconds"] for r in done)
    tokens = sum(r["tokens"] for r in done)
    return {
        "clients": clients,
        "requests": len(prompts),
        "completed": len(done),
        "failed": len(prompts) - len(done),
        "errors": sorted({r["error"] for r in results.values() if "error" in r}),
        "seconds": wall,
        "requests_per_s": len(done) / wall,
        "tokens": tokens,
        "tokens_per_s": tokens / wall,
        "p50_s": statistics.median(latencies) if latencies else None,
        "p95_s": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        if latencies
        else None,
        "strategies": sorted({str(r["strategy"]) for r in done}),
        "texts": [results.get(i, {}).get("text") for i in range(len(prompts))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--clients", default="1,4,16", help="comma-separated; the first row is the baseline")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("serve_args", nargs="*", help="options passed to `smoothie serve` (after --)")
    args = parser.parse_args()
    console = Console(stderr=True)
    prompts = bench_prompts(args.prompts)
    process, url = start_server(["--max-tokens", str(args.max_tokens), *args.serve_args], console)
    rows = []
    try:
        run_row(url, prompts[:1], 1, 4)  # warm-up: first-call costs stay out of the rows
        for clients in (int(c) for c in args.clients.split(",")):
            console.print(f"[dim]{clients} client(s) …[/]")
            rows.append(run_row(url, prompts, clients, args.max_tokens))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(600)
    base = rows[0]
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / base["tokens_per_s"] if base["tokens_per_s"] else None
        row["same_text"] = sum(a is not None and a == b for a, b in zip(row["texts"], base["texts"]))
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "texts"} for r in rows], indent=2))
        return
    table = Table(
        title=f"smoothie serve, {len(prompts)} MT-Bench + FAQ prompts, {args.max_tokens} tokens, greedy"
    )
    for column in ("clients", "req/s", "tok/s", "× one-at-a-time", "p50 s", "p95 s", "failed", "same text",
                   "strategy"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r['clients']} (one after another)" if r is base else str(r["clients"]),
            f"{r['requests_per_s']:.3f}",
            f"{r['tokens_per_s']:.2f}",
            f"{r['speedup']:.2f}×",
            f"{r['p50_s']:.1f}" if r["p50_s"] is not None else "—",
            f"{r['p95_s']:.1f}" if r["p95_s"] is not None else "—",
            str(r["failed"]),
            f"{r['same_text']}/{r['requests']}",
            ",".join(r["strategies"]),
        )
    Console(width=140).print(table)
    for r in rows:
        for error in r["errors"]:
            console.print(f"[red]{r['clients']} clients: {error}[/]")


if __name__ == "__main__":
    main()
