"""Benchmark: one finetune-draft training step, full batch vs the shared instruction prefix, in one run.

Embedded Qwen2.5-Coder-0.5B, LoRA rank 16 on the top 8 layers, batches of 8 real moderation examples.
Every draft prompt opens with the same ~100-token Alpaca header and moderation instruction; `weighted_loss`
runs it once per batch and repeats its KV cache. Steps alternate between the two ways on the same batches;
prints median seconds per step, the speed-up, and the largest loss difference (the two are the same loss).

    python benchmarks/bench_finetune.py [--steps 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from smoothie_cli.cautious.finetune import (
        FinetuneSettings,
        _collate,
        batch_order,
        peft_model,
        training_examples,
        weighted_loss,
    )
    from smoothie_cli.cautious.prompts import instruction_prefix
    from smoothie_cli.data.moderation import moderation_dataset
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(MODEL)
    tokenizer = loading.load_tokenizer(source)
    settings = FinetuneSettings(base=MODEL, dropout=0.0)
    model = peft_model(loading.load_model(source, device="cpu", dtype="float32"), settings)
    model.train()
    examples = training_examples(moderation_dataset("train").examples, tokenizer, settings)
    prefix = instruction_prefix(tokenizer, settings.instruction)
    pad = tokenizer.eos_token_id
    seconds: dict[str, list[float]] = {"full batch": [], "shared prefix": []}
    gaps = []
    for step in range(args.steps + 1):  # step 0 warms up
        batch = [examples[i] for i in batch_order(len(examples), settings.batch_size, step, 0)]
        losses = {}
        for name, cut in (("full batch", None), ("shared prefix", prefix))[:: 1 if step % 2 else -1]:
            start = time.perf_counter()
            loss = weighted_loss(model, _collate(batch, pad, torch.device("cpu"), cut))
            loss.backward()
            model.zero_grad(set_to_none=True)
            if step:
                seconds[name].append(time.perf_counter() - start)
            losses[name] = float(loss.detach())
        gaps.append(abs(losses["full batch"] - losses["shared prefix"]))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    speedup = medians["full batch"] / medians["shared prefix"]
    if args.json:
        print(json.dumps({"seconds_per_step": medians, "speedup": speedup, "max_loss_gap": max(gaps)}))
        return
    table = Table(title=f"finetune-draft step, batch {settings.batch_size}, {args.steps} steps each, {MODEL}")
    for column in ("way", "s / step (median)", "speed-up"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for name, value in medians.items():
        table.add_row(name, f"{value:.2f}", f"{medians['full batch'] / value:.2f}×")
    console = Console()
    console.print(table)
    console.print(f"largest loss difference between the two ways: {max(gaps):.2e}")


if __name__ == "__main__":
    main()
