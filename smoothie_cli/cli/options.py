"""Options shared by every subcommand (Annotated aliases, reused rather than redeclared)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from smoothie_cli.unicode_blocks import PRESETS


class Choice(str, Enum):
    """A string option with a fixed set of values: Typer checks it once and `--help` lists the values. A
    member is the string itself (`Mode.SCALE == "scale"`), so the core takes it as it takes a string."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def _choice(name: str, values: tuple[str, ...] | list[str]) -> type[Choice]:
    return Choice(name, {value.replace("-", "_").upper(): value for value in values})  # type: ignore[return-value]


# the core's own tuples (smoothing.runtime.MODES, evaluation.tasks.TASKS, ...) are checked against these in
# tests/test_ui.py; they are spelled out here so that `smoothie --help` imports nothing heavy
SmoothMode = _choice("SmoothMode", ("scale", "bias", "lower"))
McStyle = _choice("McStyle", ("letters", "text", "generate"))
TaskName = _choice(
    "TaskName", ("no-chinese", "mc", "bertscore", "toxicity", "humaneval", "language", "fidelity")
)
Save = _choice("Save", ("none", "best", "all"))
Direction = _choice("Direction", ("forward", "backward"))
Preset = _choice("Preset", list(PRESETS))
DraftQuant = _choice("DraftQuant", ("auto", "int8", "none"))
GateModel = _choice("GateModel", ("full", "draft"))
GateReading = _choice("GateReading", ("probe", "margin"))
OnUntagged = _choice("OnUntagged", ("continue", "refuse"))
Dtype = _choice("Dtype", ("auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16"))


def value_of(choice: str | Choice | None) -> str | None:
    """The plain string of an option value (None stays None)."""
    return None if choice is None else str(choice)


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
    DraftQuant,
    typer.Option("--draft-quant", help="Draft weights: auto (int8 on CPU, as is on a GPU), int8 or none."),
]
TargetQuantOpt = Annotated[
    str,
    typer.Option(
        "--target-quant", help="Target weights on a CPU: none (float32, exact) or int8 (per-token W8A8)."
    ),
]
TargetEngineOpt = Annotated[
    str,
    typer.Option(
        "--target-engine",
        help="What decodes the target: auto (llama.cpp on a CPU for a GGUF target when installed), torch or "
        "llama.cpp.",
    ),
]
ScalesOpt = Annotated[
    str | None,
    typer.Option("--scales", help="Apply smoothing at run time: an analysis.json, or 'auto' to analyse now."),
]
MinScaleOpt = Annotated[float, typer.Option("--min-scale", help="With --scales: scale of target tokens.")]
SmoothnessOpt = Annotated[float, typer.Option("--smoothness", help="With --scales: > 1.")]
ModeOpt = Annotated[
    SmoothMode,
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
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Target dtype.")]
OnUntaggedOpt = Annotated[
    OnUntagged, typer.Option("--on-untagged", help="When the draft writes no tag: continue or refuse.")
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
    GateModel,
    typer.Option(
        "--gate-model",
        help="Who reads the tag of an int8 draft: draft (itself, with its own gate-int8.json threshold "
        "when it has one) or full (a float32 copy: +1 model in memory).",
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint", help="Answers from this OpenAI-compatible server (.../v1); MODEL: its model name."
    ),
]
EndpointKeyOpt = Annotated[
    str | None, typer.Option("--endpoint-key", envvar="SMOOTHIE_ENDPOINT_KEY", help="Bearer key.")
]
EndpointTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--endpoint-timeout",
        min=1.0,
        help="Seconds one request may wait for its answer, the server's queue included (default 600; raise "
        "it for a slow server given more requests than it decodes at once).",
    ),
]
EndpointProcessorOpt = Annotated[
    bool,
    typer.Option(
        "--endpoint-processor",
        help="The endpoint runs smoothie's vLLM processor: settings travel as vllm_xargs (without it, only "
        "--mode bias travels, as a logit_bias).",
    ),
]
