"""Benchmark: cautious speculative decoding on the embedded pair, side by side in one run.

Target Qwen2.5-Coder-1.5B-Instruct (float32), draft Qwen2.5-Coder-0.5B-Instruct, greedy, N MT-Bench prompts ×
M new tokens, batch size 1:

1. the target alone (our loop with no draft);
2. transformers assisted generation with the float32 draft (the draft reads the target's prompt);
3. ours with the float32 draft (instruction swapping: the draft reads the moderation prompt);
4. ours with the int8 draft.

Prints tokens/s, speed-up over the target alone, acceptance, target forwards per token, and whether every
answer is token-for-token the target's own. Goal: ≥ 1.5× the target alone and faster than assisted generation.

    python benchmarks/bench_speculate.py [--prompts 10] [--max-new-tokens 64] [--draft DIR_OR_SPEC] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from rich.console import Console
from rich.table import Table

TARGET = "embedded:qwen2.5-coder-1.5b-instruct"
DRAFT = "embedded:qwen2.5-coder-0.5b-instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--target", default=TARGET)
    parser.add_argument("--draft", default=DRAFT)
    parser.add_argument("--dataset", default="mtbench")
    parser.add_argument(
        "--category", default=None, help="only MT-Bench questions of this category (e.g. coding)"
    )
    parser.add_argument("--skip-assisted", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from smoothie_cli.cautious.speculative import CautiousDecoder
    from smoothie_cli.evaluation.generation import chat_prompt

    from smoothie_cli.cautious.loading import quantize_draft
    from smoothie_cli.evaluation.datasets import load_dataset
    from smoothie_cli.evaluation.examples import Example
    from smoothie_cli.models import loading, resolve_model

    torch.manual_seed(0)
    target_source, draft_source = resolve_model(args.target), resolve_model(args.draft)
    tokenizer = loading.load_tokenizer(target_source)
    target = loading.load_model(target_source, device="cpu", dtype="float32")
    draft32 = loading.load_model(draft_source, device="cpu", dtype="float32")
    if hasattr(draft32, "merge_and_unload"):
        draft32 = draft32.merge_and_unload()
    draft8, _ = quantize_draft(copy.deepcopy(draft32), "int8", "cpu")
    examples = load_dataset(args.dataset).examples
    if args.category:
        examples = [e for e in examples if e.meta.get("category") == args.category]
    prompts = [e.prompt for e in examples][: args.prompts]
    n = args.max_new_tokens

    def ours(draft):
        # the gate is left out (gate=False): a refused prompt would skip the target and skew tokens/s
        decoder = CautiousDecoder(target, tokenizer, draft, gate=False)
        decoder.generate("Say hi.", max_new_tokens=4)  # warm-up
        outputs, totals = (
            [],
            {"proposed": 0, "accepted": 0, "target_forwards": 0, "seconds": 0.0, "tokens": 0},
        )
        for prompt in prompts:
            result = decoder.generate(prompt, max_new_tokens=n)
            outputs.append(result.token_ids)
            for key in totals:
                totals[key] += getattr(result.stats, key)
        return outputs, totals

    def assisted():
        eos = list(decoder_stop_ids())
        outputs, totals = [], {"proposed": None, "accepted": None, "target_forwards": None, "seconds": 0.0,
                               "tokens": 0}  # fmt: skip
        for prompt in ["Say hi.", *prompts]:
            ids = tokenizer(chat_prompt(tokenizer, Example("p", prompt)), return_tensors="pt")["input_ids"]
            start = time.perf_counter()
            with torch.inference_mode():
                out = target.generate(ids, assistant_model=draft32, max_new_tokens=n, do_sample=False,
                                      eos_token_id=eos, pad_token_id=eos[0])  # fmt: skip
            seconds = time.perf_counter() - start
            if prompt == "Say hi.":
                continue  # warm-up
            tokens = out[0, ids.shape[1] :].tolist()
            outputs.append(tokens)
            totals["seconds"] += seconds
            totals["tokens"] += len(tokens)
        return outputs, totals

    def decoder_stop_ids():
        from smoothie_cli.evaluation.generation import stop_ids

        return sorted(stop_ids(target, tokenizer))

    runs = [("target alone", lambda: ours(None))]
    if not args.skip_assisted:
        runs.append(("transformers assisted generation, float32 draft", assisted))
    runs += [("smoothie speculate, float32 draft", lambda: ours(draft32)),
             ("smoothie speculate, int8 draft", lambda: ours(draft8))]  # fmt: skip
    results = {}
    for name, run in runs:
        outputs, totals = run()
        results[name] = (outputs, totals)

    reference = results["target alone"][0]
    base_rate = results["target alone"][1]["tokens"] / results["target alone"][1]["seconds"]
    rows = []
    for name, (outputs, totals) in results.items():
        rate = totals["tokens"] / totals["seconds"]
        same = sum(a == b for a, b in zip(outputs, reference))
        accept = "—" if not totals["proposed"] else f"{totals['accepted'] / totals['proposed']:.2f}"
        per_token = (
            "—"
            if totals["target_forwards"] is None
            else f"{totals['target_forwards'] / totals['tokens']:.2f}"
        )
        rows.append({"run": name, "tokens": totals["tokens"], "seconds": round(totals["seconds"], 1),
                     "tokens_per_s": round(rate, 2), "speedup": round(rate / base_rate, 2),
                     "acceptance": accept, "target_forwards_per_token": per_token,
                     "identical": f"{same}/{len(reference)}"})  # fmt: skip
    if args.json:
        print(json.dumps({"target": args.target, "draft": args.draft, "prompts": len(prompts), "rows": rows}))
        return
    label = f"{args.dataset}{f' {args.category}' if args.category else ''}"
    table = Table(title=f"speculative decoding: {len(prompts)} {label} prompts × {n} tokens, "
                  f"target {args.target}, draft {args.draft}, {torch.get_num_threads()} threads")  # fmt: skip
    for column in (
        "run",
        "tokens",
        "seconds",
        "tok/s",
        "speed-up",
        "acceptance",
        "target fwd/token",
        "= target",
    ):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        table.add_row(row["run"], str(row["tokens"]), f"{row['seconds']:.1f}", f"{row['tokens_per_s']:.2f}",
                      f"{row['speedup']:.2f}×", row["acceptance"], row["target_forwards_per_token"],
                      row["identical"])  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
