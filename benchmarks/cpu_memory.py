"""Where memory and start-up go when `smoothie speculate` loads its pair on a CPU: a step log.

Runs what `smoothie speculate --max-new-tokens 16 PROMPT` runs (load_for_speculation, the decoder, its
warm-up, one answer) and prints, after every loading step, the seconds since start and the process's
resident memory split into anonymous pages (tensors the process owns) and file pages (weights still mapped
from a safetensors file), with the peak so far (VmHWM). The steps are found by wrapping the functions the
loaders call, so the log follows the code as it is.

    python benchmarks/cpu_memory.py [--draft none] [--target-quant int8] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROMPT = "What is a building permit and who grants it?"
STARTED = time.perf_counter()
ROWS: list[dict[str, Any]] = []


def memory() -> dict[str, float]:
    """RssAnon, RssFile and VmHWM of this process in GB (Linux /proc)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile", "VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) / 1e6  # kB → GB
    return fields


def log(step: str) -> None:
    row = {"step": step, "s": round(time.perf_counter() - STARTED, 1)} | {
        k: round(v, 2) for k, v in memory().items()
    }
    ROWS.append(row)
    print(
        f"{row['s']:7.1f}s  rss {row['VmRSS']:6.2f}  anon {row['RssAnon']:6.2f}  file {row['RssFile']:6.2f}"
        f"  peak {row['VmHWM']:6.2f} GB  {step}",
        flush=True,
    )


def traced(owner: Any, name: str, label: str | None = None) -> None:
    """Log memory after every call of `owner.name`."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        log(f"after {label or name}")
        return result

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draft", default=None, help="draft spec, or none (default: speculate's)")
    parser.add_argument("--target", default=None)
    parser.add_argument("--target-quant", default=None, help="passed on where load_for_speculation takes it")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()

    log("start")
    import torch
    import transformers
    from peft import PeftModel

    from smoothie_cli.cautious import loading as cautious_loading
    from smoothie_cli.cautious.decoder import CautiousDecoder
    from smoothie_cli.cli.speculate import DEFAULT_DRAFT, DEFAULT_TARGET
    from smoothie_cli.models import cpu, int8, loading

    log("imports")
    traced(loading, "load_tokenizer")
    traced(transformers.AutoModelForCausalLM, "from_pretrained", "AutoModelForCausalLM.from_pretrained")
    traced(PeftModel, "from_pretrained", "PeftModel.from_pretrained")
    traced(loading, "load_model")
    traced(cpu, "prepack_for_cpu")
    traced(int8, "quantize_linears")
    traced(cautious_loading, "quantize_draft")
    traced(cautious_loading, "load_draft")

    draft = args.draft or DEFAULT_DRAFT
    options: dict[str, Any] = {"device": "cpu"}
    if args.target_quant is not None:
        options["target_quant"] = args.target_quant
    target, tokenizer, drafted, _ = cautious_loading.load_for_speculation(
        args.target or DEFAULT_TARGET, None if draft == "none" else draft, **options
    )
    log("load_for_speculation done")
    import gc

    gc.collect()
    log("gc.collect")
    decoder = CautiousDecoder(
        target, tokenizer, drafted.model if drafted else None, **(drafted.gate_options() if drafted else {})
    )
    decoder.generate(PROMPT, max_new_tokens=2)
    log("warm-up answer (2 tokens)")
    with torch.inference_mode():
        result = decoder.answer_many([PROMPT], args.max_new_tokens)[0]
    log(f"answer ({len(result.token_ids)} tokens, gate {result.gate})")
    if args.json:
        Path(args.json).write_text(json.dumps(ROWS, indent=1) + "\n")


if __name__ == "__main__":
    main()
