"""`smoothie smooth`: write a checkpoint whose lm_head rows for the target script are scaled down."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import ConfigOpt, JsonOpt, ModelArg


def smooth(
    model: ModelArg = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output model directory (default: {output_path}/{model}_min…_smooth…)."
        ),
    ] = None,
    config: ConfigOpt = None,
    min_scale: Annotated[
        float | None, typer.Option("--min-scale", help="Scale of target tokens, 0..1.")
    ] = None,
    smoothness: Annotated[
        float | None, typer.Option("--smoothness", help="> 1; steeper for broken tokens.")
    ] = None,
    analysis: Annotated[
        Path | None,
        typer.Option("--analysis", help="analysis.json from `smoothie analyze -o` (else computed now)."),
    ] = None,
    window_size: Annotated[
        int | None, typer.Option("--window-size", help="N-gram window when computing.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip re-reading the output to check it.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scale the lm_head rows of target and broken tokens; write a complete, tie-safe model directory."""
    from smoothie_cli.smoothing.recipe import SmoothSettings, smooth_model
    from smoothie_cli.ui import Output

    settings = SmoothSettings(
        model=model, output=output, config=config, min_scale=min_scale, smoothness=smoothness,
        analysis=analysis, window_size=window_size, force=force, verify=not no_verify,
        command="smoothie " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )  # fmt: skip
    out = Output.of(as_json)
    with out.progress() as progress:
        summary = smooth_model(settings, progress, warn=out.note)
    rows = [[key.replace("_", " "), _cell(value)] for key, value in summary.items()]
    out.result(summary, lambda _: out.table("Smoothed checkpoint", ["", "value"], rows))


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
