"""`smoothie speculate`: cautious speculative decoding — the draft gates, then drafts for the target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli import ui
from smoothie_cli.cautious.conversation import Conversation, as_messages, last_text
from smoothie_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DraftQuantOpt,
    DtypeOpt,
    GateModelOpt,
    GateThresholdOpt,
    InstructionOpt,
    MinScaleOpt,
    ModeOpt,
    OnUntaggedOpt,
    RefusalOpt,
    RepetitionPenaltyOpt,
    ScalesOpt,
    SeedOpt,
    SmoothnessOpt,
    TargetEngineOpt,
    TargetOpt,
    TargetQuantOpt,
    TemperatureOpt,
    TopKOpt,
    TopPOpt,
)
from smoothie_cli.errors import BadValue, SmoothieError, UnknownChoice
from smoothie_cli.jsonfile import parse_json, read_text

DEFAULT_TARGET = "embedded:qwen2.5-coder-1.5b-instruct"
# the cautious draft that ships in the package (a calibrated <Toc>/<Safe> gate on the embedded 0.5B)
DEFAULT_DRAFT = "embedded:qwen2.5-coder-0.5b-cautious"
PROMPT_FIELDS = ("prompt", "instruction", "input", "text", "question")


def read_prompts(prompts: list[str] | None, input_file: Path | None) -> list[Conversation]:
    """Prompts from arguments, then from --input (text: one per line; .jsonl: a prompt field, or a
    conversation as `messages`), else stdin."""
    collected: list[Conversation] = list(prompts or [])
    if input_file is not None:
        if not input_file.is_file():
            raise SmoothieError(f"--input {input_file} does not exist; give a .txt or .jsonl file of prompts")
        text = read_text(input_file, "--input")
        if input_file.suffix.lower() in (".jsonl", ".json"):
            collected += [_jsonl_prompt(line, input_file, n) for n, line in enumerate(text.splitlines(), 1)
                          if line.strip()]  # fmt: skip
        else:
            collected += [line for line in text.splitlines() if line.strip()]
    elif not collected and not sys.stdin.isatty():
        collected = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not collected:
        raise SmoothieError("no prompt given; pass PROMPT arguments, --input FILE, or pipe prompts on stdin")
    if any(not last_text(p).strip() for p in collected):
        raise SmoothieError("a prompt is empty; remove it or give its text")
    return collected


def _jsonl_prompt(line: str, path: Path, number: int) -> Conversation:
    try:
        row = parse_json(line, f"{path}:{number}")
    except SmoothieError as error:
        raise SmoothieError(f"{error}; give one object per line") from None
    if isinstance(row, str):
        return row
    if isinstance(row, dict) and "messages" in row:  # a conversation: the gate reads all of it
        if not isinstance(row["messages"], list) or not all(isinstance(m, dict) for m in row["messages"]):
            raise SmoothieError(f"{path}:{number}: messages must be a list of {{role, content}} objects")
        try:
            return as_messages(row["messages"])
        except SmoothieError as error:
            raise SmoothieError(f"{path}:{number}: {error}") from None
    for name in PROMPT_FIELDS:
        if isinstance(row, dict) and isinstance(row.get(name), str):
            return row[name]
    fields = ", ".join((*PROMPT_FIELDS, "messages"))
    raise SmoothieError(f"{path}:{number} has none of the fields {fields}")


def speculate(
    prompts: Annotated[list[str] | None, typer.Argument(metavar="[PROMPT]...", show_default=False)] = None,
    draft: Annotated[
        str,
        typer.Option("--draft", help="Draft model, local dir, PEFT adapter, or 'none' for the target alone."),
    ] = DEFAULT_DRAFT,
    target: TargetOpt = DEFAULT_TARGET,
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="Prompts file: text (one per line) or JSONL (a prompt or messages)."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="System message for the target.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per answer at most.")] = 128,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 1.0,
    top_k: TopKOpt = 0,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: SeedOpt = None,
    gamma: Annotated[
        int | None,
        typer.Option("--gamma", help="Draft tokens per round (default: adapts; 0: never draft)."),
    ] = None,
    max_gamma: Annotated[int, typer.Option("--max-gamma", help="Upper bound of the adaptive γ.")] = 12,
    draft_context: Annotated[
        str,
        typer.Option(
            "--draft-context",
            help="What the draft drafts from after <Safe>: chat (the target's own prompt) or moderation.",
        ),
    ] = "chat",
    lookup: Annotated[
        bool,
        typer.Option(
            "--lookup/--no-lookup",
            help="Also guess by prompt lookup (copies of the prompt or answer), free of any model.",
        ),
    ] = True,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="Many prompts: auto (batched decoding from 4 prompts on a CPU), speculative or batched.",
        ),
    ] = "auto",
    draft_quant: DraftQuantOpt = "auto",
    target_quant: TargetQuantOpt = "none",
    target_engine: TargetEngineOpt = "auto",
    on_untagged: OnUntaggedOpt = "continue",
    refusal: RefusalOpt = None,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate/--no-gate", help="Let the draft's tag refuse toxic prompts (--no-gate: speed only)."
        ),
    ] = True,
    gate_threshold: GateThresholdOpt = "auto",
    gate_model: GateModelOpt = "draft",
    instruction: InstructionOpt = None,
    scales: ScalesOpt = None,
    min_scale: MinScaleOpt = 0.5,
    smoothness: SmoothnessOpt = 10.0,
    mode: ModeOpt = "scale",
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON Lines on stdout: one object per prompt, as answered.")
    ] = False,
) -> None:
    """Answer prompts with the target, drafted by a safety-tagged draft that refuses toxic requests.

    Answers stream as their tokens are accepted. With smoothing (--scales) the same scales apply to the
    draft and the target, so the text is the smoothed target's own.
    """
    from smoothie_cli.cautious.decoder import STRATEGIES, PromptSettings
    from smoothie_cli.cautious.gate import GatePolicy
    from smoothie_cli.cautious.loading import CautiousSettings, Smoothing, open_cautious
    from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL
    from smoothie_cli.generation.engine import Decoding
    from smoothie_cli.generation.sampling import SamplingConfig

    texts = read_prompts(prompts, input_file)
    # the core checks these only once the models are loaded; a typo fails here, in the core's words
    if max_new_tokens < 1:
        raise BadValue(f"must be at least 1, not {max_new_tokens}", setting="max_new_tokens")
    if strategy not in STRATEGIES:
        raise UnknownChoice(strategy, STRATEGIES, what="strategy", setting="strategy")
    settings = CautiousSettings(
        target, None if draft.lower() == "none" else draft, device=device, dtype=dtype,
        draft_quant=draft_quant, target_quant=target_quant, target_engine=target_engine,
        gate=gate, gate_threshold=gate_threshold, gate_model=gate_model, instruction=instruction,
        policy=GatePolicy(refusal or DEFAULT_REFUSAL, on_untagged),  # type: ignore[arg-type]
        decoding=Decoding(SamplingConfig(temperature, top_p, top_k, repetition_penalty, seed), gamma,
                          max_gamma,
                          lookup),
        prompt=PromptSettings(system, draft_context),  # type: ignore[arg-type]
        smoothing=Smoothing(scales, min_scale, smoothness, mode, config),
    )  # fmt: skip
    output = ui.Output.of(as_json, lines=True)
    with output.progress() as progress:
        decoder, info = open_cautious(settings, progress)
        # a warm-up measures the scheduler's costs, unless an earlier run kept them for these models here
        decoder.warm_up(reuse_costs=True)
    printer = _Printer(output, decoder.tokenizer, texts, info)
    results = decoder.answer_many(texts, max_new_tokens, strategy=strategy, on_result=printer.result,
                                  on_tokens=printer.tokens if output.human else None)  # fmt: skip
    decoder.engine.keep_costs()
    output.show(_stats_table(results, info, gate, decoder.choose_strategy(len(texts), strategy)))


class _Printer:
    """Each answer as it comes: its text streamed as its tokens are accepted (speculative) or whole when done
    (batched, refused), for people; one JSON line per prompt otherwise."""

    def __init__(
        self, output: Any, tokenizer: Any, prompts: list[Conversation], info: dict[str, Any]
    ) -> None:
        self.output, self.tokenizer, self.prompts, self.info = output, tokenizer, prompts, info
        self.streamed: set[int] = set()

    def tokens(self, index: int) -> Any:
        from smoothie_cli.generation.stream import TextStream

        stream = TextStream(self.tokenizer)
        self.streamed.add(index)
        self.output.text(f"[bold]> {last_text(self.prompts[index])}[/]")

        def show(new: list[int]) -> None:
            self.output.stream(stream.push(new))

        return show

    def result(self, index: int, result: Any) -> None:
        if not self.output.human:
            self.output.record(result.as_dict() | self.info)
            return
        if index not in self.streamed:
            self.output.text(f"[bold]> {result.prompt}[/]")
            self.output.stream(result.text)
        self.output.stream("\n")
        self.output.text(f"[dim]({result.gate}, {result.strategy})[/]")
        self.output.text("")


def _stats_table(results: list[Any], info: dict[str, Any], gate: bool, strategy: str) -> Any:
    rows = []
    for r in results:
        s = r.stats.as_dict()
        accept = "—" if s["acceptance_rate"] is None else f"{s['acceptance_rate']:.2f}"
        rows.append([r.prompt, r.gate, r.strategy, s["tokens"], f"{s['seconds']:.2f}",
                     f"{s['tokens_per_s']:.2f}", accept, f"{s['accepted']}/{s['proposed']}",
                     s["target_forwards"], "—" if s["mean_gamma"] is None else s["mean_gamma"]])  # fmt: skip
    title = f"speculate — target {info['target']}, draft {info['draft'] or 'none'}"
    if info.get("target_engine") == "llama.cpp":
        title = title.replace(", draft", " (llama.cpp), draft", 1)
    elif info.get("target_quant") == "int8":
        title = title.replace(", draft", " (int8), draft", 1)
    if info["draft_quant"]:
        title += f" ({info['draft_quant']}, {info['draft_context']} context)"
    if info["draft"] and gate:
        threshold = info["gate_threshold"]
        reading = info.get("gate_reading") or "margin"
        title += ", gate greedy" if threshold is None else f", gate {reading} > {threshold:.2f}"
    if info["smoothing"]["scales"]:
        title += f", smoothing {info['smoothing']['label']}"
    title += f", {strategy}"
    columns = ["prompt", "gate", "strategy", "tokens", "s", "tok/s", "accept", "acc/prop", "target fwd",
               "mean γ"]  # fmt: skip
    return ui.table(title, columns, rows, justify=["left", "left", "left"] + ["right"] * 7, cut=["prompt"])
