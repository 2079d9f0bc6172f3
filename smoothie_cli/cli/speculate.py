"""`smoothie speculate`: cautious speculative decoding — the draft gates, then drafts for the target."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from smoothie_cli.cli.options import DeviceOpt, DraftQuantOpt, JsonOpt
from smoothie_cli.errors import SmoothieError

DEFAULT_TARGET = "embedded:qwen2.5-coder-1.5b-instruct"
DEFAULT_DRAFT = "embedded:qwen2.5-coder-0.5b-instruct"
PROMPT_FIELDS = ("prompt", "instruction", "input", "text", "question")


def read_prompts(prompts: list[str] | None, input_file: Path | None) -> list[str]:
    """Prompts from arguments, then from --input (text: one per line; .jsonl: a prompt field), else stdin."""
    collected = list(prompts or [])
    if input_file is not None:
        if not input_file.is_file():
            raise SmoothieError(f"--input {input_file} does not exist; give a .txt or .jsonl file of prompts")
        text = input_file.read_text(encoding="utf-8")
        if input_file.suffix.lower() in (".jsonl", ".json"):
            collected += [_jsonl_prompt(line, input_file, n) for n, line in enumerate(text.splitlines(), 1)
                          if line.strip()]  # fmt: skip
        else:
            collected += [line for line in text.splitlines() if line.strip()]
    elif not collected and not sys.stdin.isatty():
        collected = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not collected:
        raise SmoothieError("no prompt given; pass PROMPT arguments, --input FILE, or pipe prompts on stdin")
    if any(not p.strip() for p in collected):
        raise SmoothieError("a prompt is empty; remove it or give its text")
    return collected


def _jsonl_prompt(line: str, path: Path, number: int) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise SmoothieError(f"{path}:{number} is not JSON ({error.msg}); one object per line") from None
    if isinstance(row, str):
        return row
    for name in PROMPT_FIELDS:
        if isinstance(row, dict) and isinstance(row.get(name), str):
            return row[name]
    raise SmoothieError(f"{path}:{number} has none of the fields {', '.join(PROMPT_FIELDS)}")


def speculate(
    prompts: Annotated[list[str] | None, typer.Argument(metavar="[PROMPT]...", show_default=False)] = None,
    draft: Annotated[
        str,
        typer.Option("--draft", help="Draft model, local dir, PEFT adapter, or 'none' for the target alone."),
    ] = DEFAULT_DRAFT,
    target: Annotated[
        str, typer.Option("--target", help="Target model (answers are its own).")
    ] = DEFAULT_TARGET,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Prompts file: text (one per line) or JSONL.")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="System message for the target.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per answer at most.")] = 128,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[
        float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature).")
    ] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for sampling.")] = None,
    gamma: Annotated[
        int | None, typer.Option("--gamma", help="Draft tokens per round (default: adapts to acceptance).")
    ] = None,
    max_gamma: Annotated[int, typer.Option("--max-gamma", help="Upper bound of the adaptive γ.")] = 12,
    draft_quant: DraftQuantOpt = "auto",
    on_untagged: Annotated[
        str, typer.Option("--on-untagged", help="When the draft writes no tag: continue or refuse.")
    ] = "continue",
    refusal: Annotated[
        str | None, typer.Option("--refusal", help="Answer given when the gate refuses.")
    ] = None,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate/--no-gate", help="Let the draft's tag refuse toxic prompts (--no-gate: speed only)."
        ),
    ] = True,
    gate_threshold: Annotated[
        str,
        typer.Option(
            "--gate-threshold",
            help="auto (the draft's calibrated gate.json, else greedy), greedy, or a log-odds margin.",
        ),
    ] = "auto",
    gate_model: Annotated[
        str,
        typer.Option(
            "--gate-model",
            help="Who reads the tag of an int8 draft: full (a float32 copy, as calibrated) or draft.",
        ),
    ] = "full",
    instruction: Annotated[
        str | None, typer.Option("--instruction", help="The draft's moderation instruction.")
    ] = None,
    device: DeviceOpt = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="Target dtype: auto, float32, bfloat16.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Answer prompts with the target, drafted by a safety-tagged draft that refuses toxic requests."""
    from smoothie_cli import ui
    from smoothie_cli.cautious.loading import load_for_speculation
    from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL
    from smoothie_cli.cautious.speculative import CautiousDecoder, Sampling

    texts = read_prompts(prompts, input_file)
    if max_new_tokens < 1:
        raise SmoothieError(f"--max-new-tokens must be at least 1, not {max_new_tokens}")
    if gamma is not None and gamma < 1:
        raise SmoothieError(f"--gamma must be at least 1, not {gamma}")
    sampling = Sampling(temperature, top_p, seed)
    draft_spec = None if draft.lower() == "none" else draft
    results = []
    with ui.progress_bar() as progress:
        target_model, tokenizer, draft_model, info = load_for_speculation(
            target, draft_spec, device=device, dtype=dtype, draft_quant=draft_quant, threshold=gate_threshold,
            gate_model=gate_model if gate else "draft",  # --no-gate: no float32 reader to keep
            progress=progress,
        )  # fmt: skip
        decoder = CautiousDecoder(
            target_model, tokenizer, draft_model.model if draft_model else None, instruction=instruction,
            refusal=refusal or DEFAULT_REFUSAL, on_untagged=on_untagged, gamma=gamma, max_gamma=max_gamma,
            sampling=sampling, system=system, gate=gate,
            gate_threshold=draft_model.gate_threshold if draft_model else None,
            gate_model=draft_model.gate_model if draft_model else None,
        )  # fmt: skip
        decoder.generate(texts[0], max_new_tokens=2)  # warm-up: first-call costs stay out of the timings
        for n, text in enumerate(texts):
            progress("speculating", n, len(texts))
            results.append(decoder.generate(text, max_new_tokens=max_new_tokens))
            progress("speculating", n + 1, len(texts))
    if as_json:
        for result in results:
            sys.stdout.write(json.dumps(result.as_dict() | info, ensure_ascii=False) + "\n")
        return
    for result in results:
        ui.out.print(f"[bold]> {result.prompt}[/]  [dim]({result.gate})[/]", soft_wrap=True)
        ui.out.print(result.text, markup=False, soft_wrap=True)
        ui.out.print()
    rows = []
    for r in results:
        s = r.stats.as_dict()
        accept = "—" if s["acceptance_rate"] is None else f"{s['acceptance_rate']:.2f}"
        rows.append([r.prompt[:40], r.gate, s["tokens"], f"{s['seconds']:.2f}", f"{s['tokens_per_s']:.2f}",
                     accept, f"{s['accepted']}/{s['proposed']}", s["target_forwards"],
                     s["mean_gamma"] or "—"])  # fmt: skip
    title = f"speculate — target {info['target']}, draft {info['draft'] or 'none'}"
    if info["draft_quant"]:
        title += f" ({info['draft_quant']})"
    if info["draft"] and gate:
        threshold = info["gate_threshold"]
        title += ", gate greedy" if threshold is None else f", gate margin > {threshold:.2f}"
    columns = ["prompt", "gate", "tokens", "s", "tok/s", "accept", "acc/prop", "target fwd", "mean γ"]
    ui.show(ui.table(title, columns, rows, justify=["left", "left"] + ["right"] * 7))
