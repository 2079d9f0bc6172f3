"""Benchmark: the same prompts through smoothie's own batched decoding, through vLLM, and through
`smoothie serve --upstream` in front of that vLLM, at 1, 4 and 16 concurrent OpenAI clients.

The embedded 0.5B (vLLM: bfloat16 from .venv-vllm, `make vllm`; smoothie: float32, its own engine), greedy,
MAX_TOKENS new tokens per prompt (ignore_eos in vLLM so every answer has the same length; smoothie's
batched decoding stops at end of turn, so its tokens/s counts what it wrote). Every client sends its next
prompt when its answer is complete (closed loop). Columns: completion tokens/s, p50/p95 latency per
request; for the gateway rows, its added latency (p50 through the gateway minus p50 direct, same clients),
against one gate read of the draft (what it must stay near: one draft prefill per request).

    python benchmarks/bench_vllm.py [--prompts 32] [--max-tokens 64] [--clients 1,4,16] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from vllm_servers import BASE, SERVED, gateway, vllm_server  # noqa: E402


def bench_prompts(count: int) -> list[str]:
    """MT-Bench questions and FAQ questions, alternating (as bench_serve.py)."""
    from smoothie_cli.data.datasets import load_dataset

    mtbench = [e.prompt for e in load_dataset("mtbench").examples]
    faq = [e.prompt for e in load_dataset("faq").examples]
    return [(mtbench if n % 2 == 0 else faq)[n // 2] for n in range(count)]


def smoothie_batched(prompts: list[str], max_tokens: int) -> dict[str, Any]:
    """smoothie's own engine: batched greedy decoding of all prompts, float32."""
    from smoothie_cli.data.examples import Example
    from smoothie_cli.generation.batched import ModelGenerator
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(BASE)
    tokenizer = loading.load_tokenizer(source)
    model = loading.load_model(source, device="cpu", dtype="float32", inference=True)
    generator = ModelGenerator(model, tokenizer, max_new_tokens=max_tokens, batch_size=len(prompts))
    from smoothie_cli.generation.prompts import chat_prompt

    examples = [Example(id=str(i), prompt=p) for i, p in enumerate(prompts)]
    generator.generate(examples[:1])  # warm-up
    started = time.perf_counter()
    tokens = generator.generate_ids([chat_prompt(tokenizer, e) for e in examples])
    seconds = time.perf_counter() - started
    written = sum(len(t) for t in tokens)
    return {"path": "smoothie batched (float32)", "clients": len(prompts), "tokens": written,
            "seconds": seconds, "tok_s": written / seconds, "p50": seconds, "p95": seconds}  # fmt: skip


def closed_loop(url: str, prompts: list[str], clients: int, max_tokens: int) -> dict[str, Any]:
    import openai

    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    queue = list(enumerate(prompts))
    lock = threading.Lock()
    latencies: list[float] = []
    tokens = [0]
    failures: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                _, prompt = queue.pop(0)
            started = time.perf_counter()
            try:
                reply = client.chat.completions.create(
                    model=SERVED, messages=[{"role": "user", "content": prompt}], temperature=0,
                    max_tokens=max_tokens, extra_body={"ignore_eos": True},
                )  # fmt: skip
            except openai.APIError as error:
                failures.append(str(error))
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                tokens[0] += reply.usage.completion_tokens

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"clients": clients, "tokens": tokens[0], "seconds": seconds, "tok_s": tokens[0] / seconds,
            "p50": statistics.median(ordered), "p95": ordered[max(0, round(0.95 * len(ordered)) - 1)],
            "failed": len(failures)}  # fmt: skip


def gate_seconds() -> float:
    """One gate read by the shipped draft (int8, as the gateway loads it): median of 5."""
    from smoothie_cli.serve.upstream import DraftGate

    gate = DraftGate.load("embedded:qwen2.5-coder-0.5b-cautious", device="cpu")
    gate(["Hello"])
    times = []
    for _ in range(5):
        started = time.perf_counter()
        gate(["Write a Python function that checks whether a number is prime."])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def save(path: Path | None, rows: list[dict[str, Any]], **more: Any) -> None:
    """The rows so far (a run cut short keeps what it measured)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"rows": rows, **more}, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--skip-smoothie", action="store_true", help="leave out smoothie's own engine")
    parser.add_argument("--eager", action="store_true", help="vLLM without torch.compile (starts faster)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    console = Console(stderr=True)
    prompts = bench_prompts(args.prompts)
    levels = [int(c) for c in args.clients.split(",")]
    rows: list[dict[str, Any]] = []
    if not args.skip_smoothie:
        console.print("smoothie's batched decoding…")
        rows.append(smoothie_batched(prompts, args.max_tokens))
        console.print(f"smoothie batched: {rows[-1]['tok_s']:.1f} tok/s")
        save(args.json, rows)
    from smoothie_cli.models.resolve import model_directory, resolve_model

    work = Path("runs/bench-vllm")
    work.mkdir(parents=True, exist_ok=True)
    model = model_directory(resolve_model(BASE))
    eager = () if args.eager else ("--no-enforce-eager",)
    with vllm_server(model, work / "vllm.log", "--dtype", "bfloat16", *eager) as (url, load, _):
        console.print(f"vLLM loaded in {load:.0f} s")
        closed_loop(url, prompts[:2], 2, 4)  # warm-up
        direct = {}
        for clients in levels:
            row = closed_loop(url, prompts, clients, args.max_tokens)
            direct[clients] = row
            rows.append({"path": "vLLM (bf16)", **row, "load_s": load})
            console.print(f"vLLM, {clients} clients: {row['tok_s']:.1f} tok/s, p50 {row['p50']:.2f} s")
            save(args.json, rows)
        with gateway(url, work / "gateway.log") as (front, _):
            closed_loop(front, prompts[:2], 2, 4)
            for clients in levels:
                row = closed_loop(front, prompts, clients, args.max_tokens)
                rows.append(
                    {"path": "gateway → vLLM", **row, "added_p50": row["p50"] - direct[clients]["p50"]}
                )
                console.print(f"gateway → vLLM, {clients} clients: {row['tok_s']:.1f} tok/s, p50 "
                              f"{row['p50']:.2f} s ({rows[-1]['added_p50'] * 1000:+.0f} ms)")  # fmt: skip
                save(args.json, rows)
    gate = gate_seconds()
    table = Table(
        title=f"{len(prompts)} prompts × {args.max_tokens} tokens, greedy (a gate read: {gate * 1000:.0f} ms)"
    )
    for column in ("path", "clients", "tok/s", "p50 s", "p95 s", "added p50"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in rows:
        added = f"{row['added_p50'] * 1000:+.0f} ms" if "added_p50" in row else ""
        table.add_row(row["path"], str(row["clients"]), f"{row['tok_s']:.1f}", f"{row['p50']:.2f}",
                      f"{row['p95']:.2f}", added)  # fmt: skip
    Console().print(table)
    save(args.json, rows, gate_seconds=gate)


if __name__ == "__main__":
    main()
