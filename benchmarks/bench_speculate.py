"""Benchmark: cautious speculative decoding on the embedded pair, side by side in one run, as users run it.

Target Qwen2.5-Coder-1.5B-Instruct (float32), the default draft of `smoothie speculate` (int8 on a CPU,
its gate on and read as `speculate` reads it: by the int8 draft itself), greedy, 3 prompts from each
MT-Bench category + 3 FAQ questions, 64 new tokens, batch size 1. Rows, run one after another *for each
prompt* (so background load hits every row alike):

1. the target alone (plain decoding, the same loop);
2. transformers assisted generation with the same draft (float32: the draft reads the target's prompt);
3. ours, int8 draft drafting from the moderation prompt it gated with (the seed's way);
4. ours, int8 draft drafting from the target's chat prompt (the default);
5. ours, chat context + prompt lookup.

Table 1, per category: tokens/s as a ratio to the target alone, acceptance, and whether every answered prompt
is token-for-token the target's own text. Goals: no category below 1.0×, overall ≥ 1.4×, coding ≥ 1.7×,
ahead of assisted generation in every category.

Table 2: `speculate --input` of 32 prompts — speculation one at a time against batched decoding (prompts/s).

    python benchmarks/bench_speculate.py [--per-category 3] [--max-new-tokens 64] [--input-prompts 32]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

TARGET = "embedded:qwen2.5-coder-1.5b-instruct"
CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities", "faq")


def prompts_by_category(per_category: int) -> list[tuple[str, str]]:
    from smoothie_cli.data.datasets import load_dataset

    chosen: list[tuple[str, str]] = []
    for example in load_dataset("mtbench").examples:
        category = example.meta.get("category", "?")
        if sum(1 for c, _ in chosen if c == category) < per_category:
            chosen.append((category, example.prompt))
    chosen += [("faq", e.prompt) for e in load_dataset("faq").examples[:per_category]]
    return chosen


def main() -> None:
    from smoothie_cli.cli.speculate import DEFAULT_DRAFT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--input-prompts", type=int, default=32, help="table 2 (0: skip it)")
    parser.add_argument("--target", default=TARGET)
    parser.add_argument("--draft", default=DEFAULT_DRAFT)
    parser.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated subset")
    parser.add_argument("--skip-assisted", action="store_true")
    parser.add_argument("--records", default=None, help="JSONL of per-prompt results: written as they come, "
                        "read back to resume (prompts already measured are skipped)")  # fmt: skip
    parser.add_argument("--report", action="store_true", help="only print the tables of --records")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.report:
        report(args)
        return

    from smoothie_cli.cautious.decoder import CautiousDecoder, PromptSettings
    from smoothie_cli.cautious.loading import load_draft
    from smoothie_cli.generation.engine import Decoding, Engine
    from smoothie_cli.generation.prompts import chat_prompt, messages_for, stop_ids
    from smoothie_cli.models import loading, resolve_model
    from smoothie_cli.models.cpu import prepack_for_cpu

    torch.manual_seed(0)
    console = Console(stderr=True)
    source = resolve_model(args.target)
    tokenizer = loading.load_tokenizer(source)
    target = loading.load_model(source, device="cpu", dtype="float32", inference=True)
    # as `speculate` loads it on a CPU: int8, reading its own tag
    draft = load_draft(args.draft, tokenizer, "cpu", "float32", "int8", threshold="auto")
    draft32 = load_draft(args.draft, tokenizer, "cpu", "float32", "none").model  # assisted generation's draft
    draft32 = draft32.merge_and_unload() if hasattr(draft32, "merge_and_unload") else draft32
    prepack_for_cpu(draft32)
    gate = draft.reader(tokenizer)

    def cautious(with_draft: bool = True, **settings: Any) -> CautiousDecoder:
        """One engine each (its own γ scheduler), as each configuration would run alone."""
        engine = Engine(target, tokenizer, draft.model if with_draft else None)
        return CautiousDecoder(engine, gate if with_draft else None, **settings)

    decoders = {
        "target alone": cautious(False),
        "ours, moderation context": cautious(prompt=PromptSettings(draft_context="moderation")),
        "ours, chat context": cautious(),
        "ours, chat context + lookup": cautious(decoding=Decoding(lookup=True)),
    }
    eos = sorted(stop_ids(target, tokenizer))

    def assisted(prompt: str, n: int) -> dict[str, Any]:
        ids = tokenizer(chat_prompt(tokenizer, messages_for(prompt)), return_tensors="pt")["input_ids"]
        start = time.perf_counter()
        with torch.inference_mode():
            out = target.generate(ids, assistant_model=draft32, max_new_tokens=n, do_sample=False,
                                  eos_token_id=eos, pad_token_id=eos[0])  # fmt: skip
        tokens = out[0, ids.shape[1] :].tolist()
        return {"tokens": tokens, "seconds": time.perf_counter() - start, "gate": "none"}

    def ours(name: str, prompt: str, n: int) -> dict[str, Any]:
        result = decoders[name].generate(prompt, n)
        s = result.stats
        return {"tokens": result.token_ids, "seconds": s.seconds, "gate": result.gate, "proposed": s.proposed,
                "accepted": s.accepted, "plain_rounds": s.as_dict()["plain_rounds"]}  # fmt: skip

    runs: dict[str, Any] = {name: (lambda p, n, name=name: ours(name, p, n)) for name in decoders}
    console.print(f"[dim]threads {torch.get_num_threads()}; warming up[/]")
    if not args.skip_assisted:
        runs = {
            "target alone": runs.pop("target alone"),
            "transformers assisted generation": assisted,
            **runs,
        }
    for run in runs.values():
        run("Say hi.", 4)  # warm-up: first-call costs stay out of the timings

    wanted = args.categories.split(",")
    prompts = [p for p in prompts_by_category(args.per_category) if p[0] in wanted]
    done = read_records(args.records)
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for k, (category, prompt) in enumerate(prompts, 1):
        console.print(f"[dim]{k}/{len(prompts)} {category}: {prompt[:60]}[/]")
        for name, run in runs.items():
            key = (name, prompt, args.max_new_tokens)
            if key not in done:
                done[key] = run(prompt, args.max_new_tokens) | {"category": category}
                write_record(args.records, key, done[key])
            records[name].append(done[key])
    table1 = category_table(records, [c for c in CATEGORIES if any(c == p[0] for p in prompts)])

    table2 = None
    if args.input_prompts:
        table2 = input_table(decoders, args.input_prompts, args.max_new_tokens, console)
    reading = "probe" if draft.gate_probe is not None else "margin"
    gate = "greedy" if draft.gate_threshold is None else f"{reading} > {draft.gate_threshold:.3f}"
    payload = {"target": args.target, "draft": draft.spec, "draft_quant": draft.quant, "gate": gate,
               "gate_threshold": draft.gate_threshold, "max_new_tokens": args.max_new_tokens,
               "threads": torch.get_num_threads(), "per_category": table1, "input": table2}  # fmt: skip
    if args.json:
        print(json.dumps(payload))
        return
    show(payload, Console())


def report(args: argparse.Namespace) -> None:
    """Table 1 from the records of a run (complete or cut short): the prompts every run has answered."""
    done = read_records(args.records)
    runs = list(dict.fromkeys(name for name, _, _ in done))
    prompts = [(r["category"], prompt) for (name, prompt, n), r in done.items()
               if name == runs[0] and n == args.max_new_tokens
               and all((other, prompt, n) in done for other in runs)]  # fmt: skip
    records = {name: [done[(name, prompt, args.max_new_tokens)] for _, prompt in prompts] for name in runs}
    categories = [c for c in CATEGORIES if any(c == p[0] for p in prompts)]
    # the records keep each prompt's gate decision, not the reading that made it
    payload = {"target": args.target, "draft": args.draft, "draft_quant": "int8", "gate": "as recorded",
               "max_new_tokens": args.max_new_tokens, "threads": torch.get_num_threads(),
               "prompts": len(prompts), "per_category": category_table(records, categories),
               "input": None}  # fmt: skip
    if args.json:
        print(json.dumps(payload))
    else:
        show(payload, Console())


def read_records(path: str | None) -> dict[tuple[str, str, int], dict[str, Any]]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as records:
            lines = records.read().splitlines()
    except FileNotFoundError:
        return {}
    rows = [json.loads(line) for line in lines if line.strip().endswith("}")]
    return {(r["run"], r["prompt"], r["max_new_tokens"]): r["result"] for r in rows}


def write_record(path: str | None, key: tuple[str, str, int], result: dict[str, Any]) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as out:
            row = {"run": key[0], "prompt": key[1], "max_new_tokens": key[2], "result": result}
            out.write(json.dumps(row) + "\n")


def category_table(records: dict[str, list[dict[str, Any]]], categories: list[str]) -> list[dict[str, Any]]:
    """Per category and overall: each run's tok/s ratio to the target alone, acceptance, identical text."""
    reference = records["target alone"]
    rows = []
    for category in [*categories, "overall"]:
        row: dict[str, Any] = {"category": category}
        picks = [i for i, r in enumerate(reference) if category in ("overall", r["category"])]
        base = rate(reference, picks)
        row["target tok/s"] = round(base, 2)
        for name, rs in records.items():
            if name == "target alone":
                continue
            answered = [i for i in picks if rs[i]["gate"] in ("safe", "untagged", "none")]
            proposed = sum(rs[i].get("proposed", 0) for i in answered)
            row[name] = {
                "ratio": round(rate(rs, answered) / rate(reference, answered), 3) if answered else None,
                "acceptance": round(sum(rs[i].get("accepted", 0) for i in answered) / proposed, 3)
                if proposed
                else None,
                "identical": f"{sum(rs[i]['tokens'] == reference[i]['tokens'] for i in answered)}"
                f"/{len(answered)}",
                "refused": len(picks) - len(answered),
            }
        rows.append(row)
    return rows


def rate(records: list[dict[str, Any]], picks: list[int]) -> float:
    tokens = sum(len(records[i]["tokens"]) for i in picks)
    seconds = sum(records[i]["seconds"] for i in picks)
    return tokens / seconds if seconds else 0.0


def input_table(decoders: dict[str, Any], count: int, n: int, console: Console) -> list[dict[str, Any]]:
    """`speculate --input` of `count` prompts: the gate in batches, then speculation one at a time or
    batched decoding; the target alone batched for reference."""
    from smoothie_cli.data.datasets import load_dataset

    prompts = [e.prompt for e in load_dataset("mtbench").examples][: count - count // 4]
    prompts += [e.prompt for e in load_dataset("faq").examples][: count - len(prompts)]
    cautious = decoders["ours, chat context + lookup"]
    plans = [
        ("target alone, batched decoding", decoders["target alone"], "batched"),
        ("speculate --input, speculation one at a time", cautious, "speculative"),
        ("speculate --input, batched decoding (auto)", cautious, "auto"),
    ]
    rows, outputs = [], {}
    for name, decoder, strategy in plans:
        console.print(f"[dim]{name}: {len(prompts)} prompts[/]")
        start = time.perf_counter()
        results = decoder.answer_many(prompts, n, strategy=strategy)
        seconds = time.perf_counter() - start
        outputs[name] = [r.token_ids for r in results]
        answered = sum(1 for r in results if r.gate in ("safe", "untagged", "none"))
        tokens = sum(len(r.token_ids) for r in results)
        rows.append({"run": name, "strategy": results[0].strategy, "prompts": len(prompts),
                     "answered": answered, "seconds": round(seconds, 1),
                     "prompts_per_s": round(len(prompts) / seconds, 3),
                     "tokens_per_s": round(tokens / seconds, 2)})  # fmt: skip
    reference = outputs[plans[0][0]]
    for row in rows:
        row["identical_to_target_batched"] = sum(a == b for a, b in zip(outputs[row["run"]], reference))
    return rows


def show(payload: dict[str, Any], console: Console) -> None:
    runs = [k for k in payload["per_category"][0] if isinstance(payload["per_category"][0][k], dict)]
    table = Table(title=f"speculative decoding — target {payload['target']}, draft {payload['draft']} "
                  f"({payload['draft_quant']}, gate {payload['gate']}), {payload['max_new_tokens']} tokens, "
                  f"greedy, {payload['threads']} threads")  # fmt: skip
    table.add_column("category")
    table.add_column("target tok/s", justify="right")
    for name in runs:
        table.add_column(f"{name}\n× (acceptance)", justify="right")
    table.add_column("= target (ours, lookup)", justify="right")
    for row in payload["per_category"]:
        cells = [row["category"], f"{row['target tok/s']:.2f}"]
        for name in runs:
            cell = row[name]
            ratio = "—" if cell["ratio"] is None else f"{cell['ratio']:.2f}×"
            accept = "" if cell["acceptance"] is None else f" ({cell['acceptance']:.2f})"
            cells.append(ratio + accept + (f" [{cell['refused']} refused]" if cell["refused"] else ""))
        cells.append(row[runs[-1]]["identical"])
        table.add_row(*cells)
    console.print(table)
    if payload["input"]:
        second = Table(title="many prompts (speculate --input): prompts/s")
        for column in ("run", "strategy", "prompts", "answered", "seconds", "prompts/s", "tok/s", "= target"):
            second.add_column(column, justify="left" if column in ("run", "strategy") else "right")
        for row in payload["input"]:
            same = f"{row['identical_to_target_batched']}/{row['prompts']}"
            second.add_row(row["run"], row["strategy"], str(row["prompts"]), str(row["answered"]),
                           f"{row['seconds']:.1f}", f"{row['prompts_per_s']:.3f}",
                           f"{row['tokens_per_s']:.2f}", same)  # fmt: skip
        console.print(second)


if __name__ == "__main__":
    main()
