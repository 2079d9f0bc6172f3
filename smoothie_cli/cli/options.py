"""Options shared by every subcommand (Annotated aliases, reused rather than redeclared)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelArg = Annotated[
    str | None,
    typer.Argument(
        metavar="MODEL",
        help="Hub id, local model dir, .gguf file, PEFT adapter dir, or embedded:NAME "
        "(default: embedded:qwen2.5-coder-0.5b-instruct).",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        help="smoothie-qwen config.yaml (used unchanged); flags override it.",
        show_default=False,
    ),
]
OutputDirOpt = Annotated[Path | None, typer.Option("-o", "--output", help="Directory to write results into.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else there.")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
DraftQuantOpt = Annotated[
    str,
    typer.Option("--draft-quant", help="Draft weights: auto (int8 on CPU, as is on a GPU), int8 or none."),
]
TargetQuantOpt = Annotated[
    str,
    typer.Option(
        "--target-quant", help="Target weights on a CPU: none (float32, exact) or int8 (per-token W8A8)."
    ),
]
ScalesOpt = Annotated[
    str | None,
    typer.Option("--scales", help="Apply smoothing at run time: an analysis.json, or 'auto' to analyse now."),
]
MinScaleOpt = Annotated[float, typer.Option("--min-scale", help="With --scales: scale of target tokens.")]
SmoothnessOpt = Annotated[float, typer.Option("--smoothness", help="With --scales: > 1.")]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode", help="With --scales: scale (logit × S), bias (+ log S) or lower (× S, never raising)."
    ),
]
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="0 = greedy.")]
TopPOpt = Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature).")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="Sample among the k likeliest tokens (0: all).")]
RepetitionPenaltyOpt = Annotated[
    float, typer.Option("--repetition-penalty", help="transformers' repetition penalty (1: none).")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for sampling (repeatable answers).")]
TargetOpt = Annotated[str, typer.Option("--target", help="Target model (answers are its own).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="Target dtype: auto, float32, bfloat16.")]
OnUntaggedOpt = Annotated[
    str, typer.Option("--on-untagged", help="When the draft writes no tag: continue or refuse.")
]
RefusalOpt = Annotated[str | None, typer.Option("--refusal", help="Answer given when the gate refuses.")]
InstructionOpt = Annotated[
    str | None, typer.Option("--instruction", help="The draft's moderation instruction.")
]
GateThresholdOpt = Annotated[
    str,
    typer.Option(
        "--gate-threshold",
        help="auto (the draft's calibrated gate.json, else greedy), greedy, or a log-odds margin.",
    ),
]
GateModelOpt = Annotated[
    str,
    typer.Option(
        "--gate-model",
        help="Who reads the tag of an int8 draft: draft (itself, with its own gate-int8.json threshold "
        "when it has one) or full (a float32 copy: +1 model in memory).",
    ),
]
