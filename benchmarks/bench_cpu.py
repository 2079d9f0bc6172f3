"""Benchmark: CPU engines side by side on the embedded Qwen2.5-Coder-1.5B, in one run.

Each engine runs in its own process (so its peak RSS and start-up are its own), one after another, on the
same prompts (bench_speculate's: 3 per MT-Bench category + 3 FAQ questions): chat template, greedy,
`--max-new-tokens` new tokens, 2 threads, time including the prompt.

- `llama.cpp`: llama-cpp-python plain decoding of the embedded GGUF itself (`Llama(n_threads=2)`, chat
  completion; llama.cpp rows are skipped with a note when llama_cpp is not installed: `make llama-cpp`);
- `llama.cpp-lookup`: llama-cpp-python's own speculation (prompt-lookup drafts);
- `target-llama`, `target-float32`, `target-int8`: smoothie's target alone (no lookup) on llama.cpp (the
  same GGUF), torch float32 (oneDNN-packed) or torch int8 (`--target-quant int8`);
- `speculate-*`: `smoothie speculate` defaults (int8 cautious draft, gate on, chat context + lookup) over
  each target;
- `exact-*`: `smoothie speculate --gamma 0 --no-lookup`: the gate on, the target verifying one token per
  call, so its greedy text is its own one-token decoding's on any engine;
- `batched-llama`, `batched-float32`: plain batched decoding of the first 16 prompts at once
  (`Engine.answer_batch`; on llama.cpp the continuous batch `serve` decodes with), one row for the batch.

Table 1: tok/s (sum of tokens / sum of seconds), each as a ratio to the float32 target alone and to
llama.cpp, start-up (process start → ready to answer, as `smoothie speculate` starts: the γ scheduler's
costs kept by an earlier run of the same models on this machine, else a warm-up answer of 8 tokens), peak
RSS (VmHWM), and whether each speculate row's text is token-for-token its own target's. Table 2: per
category, × llama.cpp plain, and the worst prompt's ratio to its own target.

`--quality N`: the share of greedy answers of each quantized target (`--quality-targets`: torch int8,
llama.cpp on the Q4_K_M GGUF) identical to float32's over the first N MT-Bench + FAQ prompts of
bench_speculate (3 per MT-Bench category, then FAQ), and their mean common prefix.

`--widths`: what one target call costs as it verifies more tokens at once (1, 2, 4, 8 after a real
prompt), per target engine, and the most speculation could gain from it: k tokens per call of width k at
best (every guess accepted, guesses free), so the ceiling is max over k of k / (cost(k) / cost(1)). Where a
call of k tokens costs k single ones (a compute-bound CPU), no draft or lookup can make decoding faster.

`--gguf-error`: how far each way of writing a smoothed GGUF output tensor is from exact float scaling.

    python benchmarks/bench_cpu.py [--max-new-tokens 64] [--engines ...] [--quality 20 --quality-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
TARGET = "embedded:qwen2.5-coder-1.5b-instruct"
ENGINES = ("llama.cpp", "llama.cpp-lookup", "target-llama", "speculate-llama", "target-float32",
           "speculate-float32")  # fmt: skip
ALL_ENGINES = (*ENGINES, "target-int8", "speculate-int8", "exact-llama", "exact-float32", "batched-llama",
               "batched-float32")  # fmt: skip


def bench_prompts(per_category: int) -> list[tuple[str, str]]:
    """(category, prompt): bench_speculate's MT-Bench categories + FAQ (measurement only)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_speculate import prompts_by_category

    return prompts_by_category(per_category)


THREADS = 2


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def run_llama(prompts: list[str], n: int) -> dict[str, Any]:
    from llama_cpp import Llama

    from smoothie_cli.models.embedded import embedded_gguf

    path = embedded_gguf(TARGET.removeprefix("embedded:"))
    llm = Llama(model_path=str(path), n_threads=THREADS, n_ctx=2048, verbose=False, seed=0)
    return _llama_rows(llm, prompts, n)


def run_llama_lookup(prompts: list[str], n: int) -> dict[str, Any]:
    """llama-cpp-python's own speculation: prompt-lookup drafts (`LlamaPromptLookupDecoding`)."""
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from smoothie_cli.models.embedded import embedded_gguf

    path = embedded_gguf(TARGET.removeprefix("embedded:"))
    llm = Llama(model_path=str(path), n_threads=THREADS, n_ctx=2048, verbose=False, seed=0,
                draft_model=LlamaPromptLookupDecoding(num_pred_tokens=10))  # fmt: skip
    return _llama_rows(llm, prompts, n)


def _llama_rows(llm: Any, prompts: list[str], n: int) -> dict[str, Any]:
    options = {"max_tokens": n, "temperature": 0.0, "top_k": 1, "repeat_penalty": 1.0}
    llm.create_chat_completion(
        messages=[{"role": "user", "content": prompts[0]}], **(options | {"max_tokens": 2})
    )
    ready = time.perf_counter() - STARTED
    rows = []
    for prompt in prompts:
        start = time.perf_counter()
        out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], **options)
        rows.append({"tokens": out["usage"]["completion_tokens"], "seconds": time.perf_counter() - start,
                     "text": out["choices"][0]["message"]["content"]})  # fmt: skip
    return {"startup_s": ready, "rows": rows}


def run_smoothie(engine: str, prompts: list[str], n: int) -> dict[str, Any]:
    """smoothie as `speculate` runs: `target-*` the target alone (no draft, no lookup), `speculate-*` the
    defaults (the int8 cautious draft, gate on, chat context + lookup), `exact-*` the gate with one-token
    verification (`--gamma 0 --no-lookup`), over the target on `*`: float32 or int8 (torch) or llama
    (llama.cpp on the GGUF)."""
    import torch

    from smoothie_cli.cautious.loading import CautiousSettings, open_cautious
    from smoothie_cli.cli.speculate import DEFAULT_DRAFT
    from smoothie_cli.generation.engine import Decoding

    torch.set_num_threads(THREADS)
    kind, quant = engine.split("-")
    gated = kind in ("speculate", "exact")
    settings = CautiousSettings(
        TARGET, DEFAULT_DRAFT if gated else None, device="cpu",
        **target_way("llama.cpp" if quant == "llama" else quant),
        decoding=Decoding(lookup=kind == "speculate", gamma=0 if kind == "exact" else None),
    )  # fmt: skip
    decoder, _ = open_cautious(settings)
    restored = decoder.warm_up(reuse_costs=True)  # as `speculate` starts: kept costs, else a warm-up
    ready = time.perf_counter() - STARTED
    rows = []
    for prompt in prompts:
        start = time.perf_counter()
        result = decoder.generate(prompt, n)
        rows.append({"tokens": len(result.token_ids), "seconds": time.perf_counter() - start,
                     "ids": result.token_ids, "text": result.text, "gate": str(result.gate),
                     "acceptance": result.stats.as_dict()["acceptance_rate"]})  # fmt: skip
    decoder.engine.keep_costs()
    return {"startup_s": ready, "rows": rows, "costs_restored": restored}


def run_batched(engine: str, prompts: list[str], n: int) -> dict[str, Any]:
    """Plain batched decoding of every prompt at once (`Engine.answer_batch`; on llama.cpp the continuous
    batch `serve` uses, a sequence per row): one row of results for the whole batch."""
    import torch

    from smoothie_cli.cautious.loading import CautiousSettings, open_cautious

    torch.set_num_threads(THREADS)
    quant = engine.split("-")[1]
    engine_name = "llama.cpp" if quant == "llama" else "torch"
    settings = CautiousSettings(
        TARGET, None, device="cpu", target_engine=engine_name, batch_rows=len(prompts)
    )
    decoder, _ = open_cautious(settings)
    decoder.warm_up()
    ready = time.perf_counter() - STARTED
    engine_ = decoder.engine
    start = time.perf_counter()
    answers = engine_.answer_batch([[{"role": "user", "content": p}] for p in prompts], n,
                                   pipeline=engine_.pipeline(), batch_size=len(prompts))  # fmt: skip
    seconds = time.perf_counter() - start
    return {"startup_s": ready, "rows": [{"tokens": sum(map(len, answers)), "seconds": seconds}],
            "batch": len(prompts)}  # fmt: skip


def child(engine: str, n: int, out: Path, per_category: int) -> None:
    prompts = [p for _, p in bench_prompts(per_category)]
    if engine.startswith("batched"):
        record = run_batched(engine, prompts[:16], n)
    elif engine == "llama.cpp":
        record = run_llama(prompts, n)
    elif engine == "llama.cpp-lookup":
        record = run_llama_lookup(prompts, n)
    else:
        record = run_smoothie(engine, prompts, n)
    record |= {"engine": engine, "peak_rss_gb": peak_rss_gb()}
    out.write_text(json.dumps(record))


QUANTIZED = ("int8", "llama.cpp")


def target_way(way: str) -> dict[str, str]:
    """open_cautious / load_for_speculation settings of a target way: float32, int8 (torch) or llama.cpp."""
    return {"target_engine": "llama.cpp" if way == "llama.cpp" else "torch",
            "target_quant": "int8" if way == "int8" else "none"}  # fmt: skip


def quality(count: int, n: int, quantized: list[str]) -> dict[str, Any]:
    """Greedy answers of each quantized target (torch int8, llama.cpp on the Q4_K_M GGUF) against the
    float32 target's, on MT-Bench + FAQ prompts: how many are identical, and their mean common prefix."""
    import gc

    import torch

    from smoothie_cli.cautious.loading import CautiousSettings, open_cautious

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_speculate import prompts_by_category

    torch.set_num_threads(THREADS)
    prompts = [p for _, p in prompts_by_category(3)][:count]
    answers: dict[str, list[list[int]]] = {}
    seconds: dict[str, float] = {}
    for way in ("float32", *quantized):
        settings = CautiousSettings(TARGET, None, device="cpu", **target_way(way))
        decoder, _ = open_cautious(settings)
        start = time.perf_counter()
        answers[way] = []
        for k, prompt in enumerate(prompts, 1):
            answers[way].append(decoder.generate(prompt, n).token_ids)
            print(f"  quality {way} {k}/{len(prompts)}", file=sys.stderr, flush=True)
        seconds[way] = time.perf_counter() - start
        del decoder
        gc.collect()
    report: dict[str, Any] = {"prompts": len(prompts), "tokens": n, "seconds": seconds, "ways": {}}
    for way in quantized:
        pairs = list(zip(answers["float32"], answers[way]))
        prefix = [next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                  for a, b in pairs]  # fmt: skip
        same = sum(a == b for a, b in pairs)
        report["ways"][way] = {"identical": same, "share": same / len(pairs),
                               "mean_common_prefix": sum(prefix) / len(prefix)}  # fmt: skip
    return report


WIDTHS = (1, 2, 4, 8)


def widths(ways: list[str], repeats: int = 8) -> dict[str, Any]:
    """Seconds per target call of 1, 2, 4 and 8 tokens after the chat-templated first bench prompt (the
    median of `repeats` calls, each after cropping back to the prompt), per target way."""
    import gc
    import statistics

    import torch

    from smoothie_cli.cautious.loading import load_for_speculation
    from smoothie_cli.generation.cache import open_sequence
    from smoothie_cli.generation.prompts import chat_prompt, encode, messages_for

    torch.set_num_threads(THREADS)
    prompt = bench_prompts(1)[0][1]
    report: dict[str, Any] = {}
    for way in ways:
        target, tokenizer, _, _ = load_for_speculation(TARGET, None, device="cpu", **target_way(way))
        ids = encode(tokenizer, chat_prompt(tokenizer, messages_for(prompt)))
        sequence = open_sequence(target)
        with torch.inference_mode():
            sequence.feed(ids)
            following = ids[-8:]  # real tokens to verify (what they are does not change the cost)
            seconds = {}
            for k in WIDTHS:
                times = []
                for _ in range(repeats + 1):  # the first call of each width is a warm-up
                    sequence.crop(len(ids))
                    start = time.perf_counter()
                    sequence.feed(following[:k], keep=k)
                    times.append(time.perf_counter() - start)
                seconds[k] = statistics.median(times[1:])
        report[way] = {"prompt_tokens": len(ids), "seconds": seconds,
                       "ceiling": max(k / (seconds[k] / seconds[1]) for k in WIDTHS)}  # fmt: skip
        print(f"  widths {way} done", file=sys.stderr, flush=True)
        del target, sequence
        gc.collect()
    return report


def widths_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="one target call verifying k tokens, × the cost of k = 1")
    table.add_column("target")
    table.add_column("k = 1 s", justify="right")
    for k in WIDTHS[1:]:
        table.add_column(f"k = {k}", justify="right")
    table.add_column("ceiling", justify="right")
    for way, r in report.items():
        s = r["seconds"]
        table.add_row(way, f"{s[1]:.3f}", *(f"{s[k] / s[1]:.2f}" for k in WIDTHS[1:]), f"{r['ceiling']:.2f}×")
    return table


def gguf_error() -> list[dict[str, Any]]:
    """Each output type against exact float scaling of the dequantised rows, on both embedded GGUFs, with
    the default smoothing (min_scale 0.5, smoothness 10)."""
    from smoothie_cli.config import load_config
    from smoothie_cli.gguf_file import read_gguf
    from smoothie_cli.models.embedded import embedded_gguf
    from smoothie_cli.smoothing.gguf_output import OUTPUT_TYPES, scaled_output, scaling_error
    from smoothie_cli.smoothing.scales import scales_from_analysis
    from smoothie_cli.vocab.analysis import analysis_document
    from smoothie_cli.vocab.tokens import load_vocabulary

    rows = []
    for name in ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"):
        path = embedded_gguf(name)
        document = analysis_document(name, load_vocabulary(path), load_config(None), None)
        tensor = next(t for t in read_gguf(path).tensors if t.name == "output.weight")
        vector = scales_from_analysis(document, 0.5, 10.0).vector(int(tensor.shape[-1]))
        for kind in OUTPUT_TYPES:
            data, type_name = scaled_output(tensor, vector, kind)
            error = scaling_error(tensor, data, type_name, vector)
            rows.append({"model": name, "way": kind, "type": type_name, "mb": data.nbytes / 1e6,
                         "source_mb": int(tensor.n_bytes) / 1e6} | error)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"any of {', '.join(ALL_ENGINES)}")
    parser.add_argument("--per-category", type=int, default=3, help="prompts per MT-Bench category + FAQ")
    parser.add_argument("--quality", type=int, default=0, help="prompts for the int8 vs float32 check")
    parser.add_argument("--quality-tokens", type=int, default=32)
    parser.add_argument(
        "--quality-targets",
        default="int8,llama.cpp",
        help="quantized targets compared with float32: int8, llama.cpp",
    )
    parser.add_argument("--gguf-error", action="store_true")
    parser.add_argument(
        "--widths",
        default=None,
        help="targets whose cost per call width is measured (comma-separated: llama.cpp, int8, float32)",
    )
    parser.add_argument("--json", default=None, help="write every measurement to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.max_new_tokens, Path(args.child_out), args.per_category)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    report: dict[str, Any] = {"host_threads": THREADS, "max_new_tokens": args.max_new_tokens,
                              "load_before": os.getloadavg()}  # fmt: skip
    if args.gguf_error:
        report["gguf_error"] = gguf_error()
        table = Table(title="smoothed GGUF output vs exact float scaling (scaled rows)")
        for column in ("model", "way", "type", "MB", "max abs", "mean abs", "max rel"):
            table.add_column(column, justify="left" if column in ("model", "way", "type") else "right")
        for r in report["gguf_error"]:
            table.add_row(r["model"].removeprefix("qwen2.5-coder-"), r["way"], r["type"], f"{r['mb']:.0f}",
                          f"{r['max_abs']:.2e}", f"{r['mean_abs']:.2e}", f"{r['max_rel']:.2e}")  # fmt: skip
        console.print(table)
    if args.widths:
        report["widths"] = widths(args.widths.split(","))
        console.print(widths_table(report["widths"]))
    engines = [e for e in args.engines.split(",") if e]
    results: dict[str, Any] = {}
    for engine in engines:
        if engine.startswith("llama.cpp") or engine.endswith("-llama"):
            try:
                import llama_cpp  # noqa: F401
            except ImportError:
                console.print("[yellow]llama.cpp skipped: llama_cpp is not installed (make llama-cpp)[/]")
                continue
        out = Path(f"/tmp/bench_cpu_{os.getpid()}_{engine}.json")
        console.print(f"[dim]{engine}…[/]")
        done = subprocess.run([sys.executable, __file__, "--child", engine, "--child-out", str(out),
                               "--max-new-tokens", str(args.max_new_tokens),
                               "--per-category", str(args.per_category)], check=False)  # fmt: skip
        if done.returncode == 0:
            results[engine] = json.loads(out.read_text())
            out.unlink()
        else:
            console.print(f"[red]{engine} failed (exit {done.returncode})[/]")
    report["engines"] = results
    report["load_after"] = os.getloadavg()
    if results:
        categories = [c for c, _ in bench_prompts(args.per_category)]
        console.print(speed_table(results, args.max_new_tokens, len(categories)))
        console.print(category_table(results, categories))
        console.print(
            f"load average before {report['load_before'][0]:.2f}, after {report['load_after'][0]:.2f}"
        )
    if args.quality:
        report["quality"] = quality(args.quality, args.quality_tokens, args.quality_targets.split(","))
        q = report["quality"]
        for way, r in q["ways"].items():
            console.print(f"{way} target vs float32, {q['prompts']} MT-Bench + FAQ prompts × {q['tokens']} "
                          f"greedy tokens: {r['identical']}/{q['prompts']} identical ({r['share']:.2f}), "
                          f"mean common prefix {r['mean_common_prefix']:.1f} tokens")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


def _rate(rows: list[dict[str, Any]]) -> float:
    return sum(r["tokens"] for r in rows) / max(sum(r["seconds"] for r in rows), 1e-9)


def own_target(engine: str) -> str | None:
    """The target-alone row a gated row is compared with (speculate-llama → target-llama)."""
    kind, _, quant = engine.partition("-")
    return f"target-{quant}" if kind in ("speculate", "exact") else None


def category_table(results: dict[str, Any], categories: list[str]) -> Any:
    """Each engine's tok/s per category as a ratio to llama.cpp's plain decoding, and the worst answered
    prompt's ratio to smoothie's own target alone on the same engine. Engines are columns, so the table
    fits 80 columns."""
    from rich.table import Table

    engines = {e: r for e, r in results.items() if "batch" not in r}  # a batch is one row: no categories
    llama = results.get("llama.cpp")
    table = Table(title="× llama.cpp plain, per category")
    table.add_column("category")
    for engine in engines:
        table.add_column(engine, justify="right")
    for name in dict.fromkeys(categories):
        cells = []
        for record in engines.values():
            rows = [r for r, c in zip(record["rows"], categories) if c == name]
            base = [r for r, c in zip(llama["rows"], categories) if c == name] if llama else []
            cells.append(f"{_rate(rows) / _rate(base):.2f}" if base else "—")
        table.add_row(name, *cells)
    worst = []
    for engine, record in engines.items():
        alone = results.get(own_target(engine))
        # answered prompts only: a refused one has no tokens to compare
        ratios = (
            [_rate([a]) / _rate([b]) for a, b in zip(record["rows"], alone["rows"]) if a["tokens"]]
            if alone
            else []
        )
        worst.append(f"{min(ratios):.2f}" if ratios else "—")
    table.add_row("worst prompt × own target", *worst)
    return table


def speed_table(results: dict[str, Any], n: int, count: int) -> Any:
    from rich.table import Table

    def rate(engine: str) -> float | None:
        if engine not in results:
            return None
        rows = results[engine]["rows"]
        return sum(r["tokens"] for r in rows) / sum(r["seconds"] for r in rows)

    base, llama = rate("target-float32"), rate("llama.cpp")
    table = Table(title=f"1.5B on a CPU, {count} prompts × {n} tokens, greedy, {THREADS} threads")
    for column in ("engine", "tok/s", "× f32", "× llama", "start s", "peak GB", "own text"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for engine, record in results.items():
        r = rate(engine) or 0.0
        own = "—"
        if own_target(engine):
            alone = results.get(own_target(engine))
            if alone:
                same = sum(a["ids"] == b["ids"] for a, b in zip(record["rows"], alone["rows"]))
                own = f"{same}/{len(record['rows'])}"
        ratios = [f"{r / base:.2f}" if base else "—", f"{r / llama:.2f}" if llama else "—"]
        table.add_row(engine, f"{r:.2f}", *ratios, f"{record['startup_s']:.1f}",
                      f"{record['peak_rss_gb']:.2f}", own)  # fmt: skip
    return table


if __name__ == "__main__":
    main()
