"""Benchmark: how much probability each smoothing mode puts on target-script tokens under sampling.

    python benchmarks/sampling_leak.py [--limit 100] [--temperatures 0.7,1.0] [--json runs/quality/leak.json]

`make quality` counts answers with Chinese in them (no_chinese) under sampling. With one seed for every
setting the draws are coupled (the same random numbers pick the tokens), so a mode that halves or doubles a
rare token's probability seldom changes a 64-token answer, and 100 answers cannot show a leak of a few
percent. This measures the leak directly and without sampling noise: the base model samples each answer once
(seeded, open-ended Korean requests); the answer is read back in one forward; at every answer position each
mode's processor and the temperature are applied to the same logits, and the softmax mass on the target
tokens (every token the analysis scales, broken byte tokens included) is summed. Per mode: the mean target
mass per token, the share of positions where the mode puts more mass on them than the base (> 1%), the
expected target tokens per answer (the sum over its positions), and the chance that an answer of that length
draws at least one (1 − Π(1 − mass), along the base answer's path).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"
MODES = ("base", "scale", "bias", "lower")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--dataset", default="korean-open")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--temperatures", default="0.7,1.0")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--min-scale", type=float, default=0.5)
    parser.add_argument("--smoothness", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    from smoothie_cli.config import SmoothieConfig
    from smoothie_cli.data.datasets import load_dataset
    from smoothie_cli.evaluation.session import open_session
    from smoothie_cli.generation.prompts import chat_prompt, encode
    from smoothie_cli.generation.sampling import SamplingConfig
    from smoothie_cli.smoothing.runtime import setting_processors
    from smoothie_cli.smoothing.scales import scales_from_analysis

    started = time.perf_counter()
    session = open_session(args.model, SmoothieConfig(), device="cpu", max_new_tokens=args.max_new_tokens)
    model, tokenizer, generator = session.context.model, session.context.tokenizer, session.context.generator
    analysis = session.analysis("auto")
    targets = list(scales_from_analysis(analysis, args.min_scale, args.smoothness).scales)
    processors = {"base": None} | {
        mode: setting_processors(analysis, "auto", args.min_scale, args.smoothness, mode)[0][0]
        for mode in MODES[1:]
    }
    examples = load_dataset(args.dataset, limit=args.limit, seed=args.seed).examples
    prompts = [chat_prompt(tokenizer, e) for e in examples]

    rows, records = [], []
    for temperature in (float(t) for t in args.temperatures.split(",")):
        generator.sampling = SamplingConfig(temperature, seed=args.seed)
        answers = generator.generate_ids(prompts)  # the base model's own sampled answers
        mass: dict[str, list[float]] = {mode: [] for mode in MODES}
        expected: dict[str, list[float]] = {mode: [] for mode in MODES}
        any_target: dict[str, list[float]] = {mode: [] for mode in MODES}
        raised: dict[str, int] = {mode: 0 for mode in MODES}  # positions where the mode adds target mass
        for prompt, answer in zip(prompts, answers):
            if not answer:
                continue
            context = encode(tokenizer, prompt)
            ids = torch.tensor([context + answer])
            with torch.no_grad():
                logits = model(ids).logits[0, len(context) - 1 : -1].float()  # predicts each answer token
            mask = torch.zeros(logits.shape[-1], dtype=torch.bool)
            mask[[t for t in targets if t < logits.shape[-1]]] = True
            base = torch.softmax(logits / temperature, dim=-1)[:, mask].sum(-1)
            for mode, processor in processors.items():
                shaped = logits if processor is None else processor(ids, logits.clone())
                per_token = torch.softmax(shaped / temperature, dim=-1)[:, mask].sum(-1).clamp(0, 1)
                raised[mode] += int((per_token > base * 1.01).sum())
                mass[mode] += per_token.tolist()
                expected[mode].append(float(per_token.sum()))
                none = float(torch.log1p(-per_token.clamp(max=1 - 1e-9)).sum())  # log P(no target token)
                any_target[mode].append(1 - math.exp(none))
        base_expected = sum(expected["base"]) / len(expected["base"])
        for mode in MODES:
            record = {
                "temperature": temperature,
                "mode": mode,
                "answers": len(expected[mode]),
                "tokens": len(mass[mode]),
                "mass_per_token": sum(mass[mode]) / len(mass[mode]),
                "expected_per_answer": sum(expected[mode]) / len(expected[mode]),
                "p_answer_has_target": sum(any_target[mode]) / len(any_target[mode]),
            }
            record["positions_raised"] = raised[mode] / max(len(mass[mode]), 1)
            record["vs_base"] = record["expected_per_answer"] / base_expected if base_expected else math.nan
            records.append(record)
            rows.append(
                [
                    f"{temperature:g}",
                    mode if mode == "base" else f"{mode} ({args.min_scale:g}, {args.smoothness:g})",
                    f"{record['mass_per_token']:.2e}",
                    f"{record['expected_per_answer']:.4f}",
                    f"{record['p_answer_has_target']:.4f}",
                    f"{record['positions_raised']:.1%}",
                    f"{record['vs_base']:.2f}×",
                ]
            )
    table = Table(
        title=f"Target-script probability under sampling, {args.model}, {len(prompts)} {args.dataset} "
        f"prompts, {args.max_new_tokens} tokens"
    )
    columns = ("T", "mode", "mass per token", "expected per answer", "P(answer has one)", "positions raised")
    for column in (*columns, "vs base"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    Console().print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2), encoding="utf-8")
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
