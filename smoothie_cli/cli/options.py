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
ScalesOpt = Annotated[
    str | None,
    typer.Option("--scales", help="Apply smoothing at run time: an analysis.json, or 'auto' to analyse now."),
]
MinScaleOpt = Annotated[float, typer.Option("--min-scale", help="With --scales: scale of target tokens.")]
SmoothnessOpt = Annotated[float, typer.Option("--smoothness", help="With --scales: > 1.")]
ModeOpt = Annotated[str, typer.Option("--mode", help="With --scales: scale (logit × S) or bias (+ log S).")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="0 = greedy.")]
TopPOpt = Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature).")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="Sample among the k likeliest tokens (0: all).")]
RepetitionPenaltyOpt = Annotated[
    float, typer.Option("--repetition-penalty", help="transformers' repetition penalty (1: none).")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed for sampling (repeatable answers).")]
