"""`smoothie sweep`: a grid of min_scale × smoothness, one model load, resumable, with tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.evaluate import DatasetOpt, LimitOpt, TaskOpt
from smoothie_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    EndpointKeyOpt,
    EndpointOpt,
    EndpointProcessorOpt,
    EndpointTimeoutOpt,
    JsonOpt,
    McStyle,
    ModelArg,
    Save,
    ScalesOpt,
    SmoothMode,
    value_of,
)
from smoothie_cli.errors import BadValue


def parse_floats(values: list[str] | None, setting: str) -> list[float] | None:
    """'1.0,0.9' or repeated options → [1.0, 0.9]."""
    if not values:
        return None
    out = []
    for value in values:
        for part in value.split(","):
            try:
                out.append(float(part))
            except ValueError:
                raise BadValue(
                    f"'{part}' is not a number; give a list like 1.0,0.7,0.5", setting=setting
                ) from None
    return out


def read_grid(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    from smoothie_cli.sweep import read_grid as read_grid_file

    return read_grid_file(path)


def sweep(
    model: ModelArg = None,
    min_scale: Annotated[
        list[str] | None, typer.Option("--min-scale", help="Values to sweep, e.g. 1.0,0.7,0.5 (default 0.5).")
    ] = None,
    smoothness: Annotated[
        list[str] | None, typer.Option("--smoothness", help="Values to sweep, e.g. 1.1,10,100 (default 10).")
    ] = None,
    grid: Annotated[
        Path | None, typer.Option("--grid", help="YAML grid (configs/sweep-*.yaml); flags given override it.")
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Directory for runs, results and plots.")
    ] = Path("runs/sweep"),
    task: TaskOpt = None,
    dataset: DatasetOpt = None,
    limit: LimitOpt = None,
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", help="Tokens per answer (default 48).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Prompts decoded together (default 32, suits a CPU).")
    ] = None,
    scales: ScalesOpt = "auto",
    mode: Annotated[
        SmoothMode | None,
        typer.Option(
            "--mode",
            help="scale (logit × S, the checkpoint edit; default), bias (+ log S) or lower (scale, never "
            "raising).",
        ),
    ] = None,
    save: Annotated[Save, typer.Option("--save", help="Write checkpoints too.")] = Save.NONE,  # type: ignore[attr-defined]
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Search the mildest min_scale meeting METRIC:DATASET>=VALUE (e.g. "
            "no_chinese:chinese-elicit>=0.99) at one smoothness; --min-scale LOW,HIGH is the bracket "
            "(default 0.1,1.0).",
        ),
    ] = None,
    search_steps: Annotated[
        int, typer.Option("--search-steps", help="With --target: bisections after the two ends.")
    ] = 5,
    mc_style: Annotated[
        McStyle | None, typer.Option("--mc-style", help="Multiple-choice style (default letters).")
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="0 = greedy (default).")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass (default 1).")] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", help="Answers per prompt (default 1; more need --temperature).")
    ] = None,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Seed for --limit sampling.")] = 0,
    as_json: JsonOpt = False,
    endpoint: EndpointOpt = None,
    endpoint_key: EndpointKeyOpt = None,
    endpoint_processor: EndpointProcessorOpt = False,
    endpoint_timeout: EndpointTimeoutOpt = None,
) -> None:
    """Evaluate a grid of smoothing settings with one model load; finished settings are skipped on re-runs.

    Options given on the command line win over the --grid file, which wins over the defaults. With --endpoint
    the answers come from an OpenAI-compatible server and each setting travels with its requests."""
    from smoothie_cli.sweep import SweepSettings
    from smoothie_cli.sweep import sweep as run
    from smoothie_cli.ui import Output

    options = {
        "model": model, "min_scale": parse_floats(min_scale, "min_scale"),
        "smoothness": parse_floats(smoothness, "smoothness"), "tasks": task, "datasets": dataset,
        "limit": limit, "max_new_tokens": max_new_tokens, "batch_size": batch_size, "scales": scales,
        "mode": value_of(mode), "save": value_of(save), "target": target, "search_steps": search_steps,
        "mc_style": value_of(mc_style), "temperature": temperature, "top_p": top_p, "samples": samples,
        "seed": seed, "device": device, "config": config, "output": output, "endpoint": endpoint,
        "endpoint_key": endpoint_key, "endpoint_processor": endpoint_processor,
        "endpoint_timeout": endpoint_timeout,
    }  # fmt: skip
    settings = SweepSettings.merge(options, read_grid(grid))
    out = Output.of(as_json)
    with out.live_table("sweep", ["min_scale", "smoothness"]) as (progress, add_row):
        report = run(
            settings, on_run=lambda r: add_row(_cells(r, resumed=True)), warn=out.note, progress=progress
        )
    out.result(report.as_dict(), lambda _: _table(out, report))
    if report.search is not None:
        out.note(_search_note(report))
    for path in report.written:
        out.note(f"wrote {path}")


def _cells(run: Any, resumed: bool = False) -> list[str]:
    cells = [f"{run.setting.min_scale:g}", f"{run.setting.smoothness:g}"]
    cells += [f"{k}={v:.3f}" for k, v in sorted(run.scores.items())]
    return cells + (["(resumed)"] if resumed and run.resumed else [])


def _table(out: Any, report: Any) -> Any:
    metrics = sorted({m for r in report.runs for m in r.scores})
    rows = [
        [f"{r.setting.min_scale:g}", f"{r.setting.smoothness:g}",
         *[f"{r.scores[m]:.3f}" if m in r.scores else "–" for m in metrics]]
        for r in report.runs
    ]  # fmt: skip
    title = f"sweep — {report.model} ({report.mode} mode)"
    return out.table(
        title, ["min_scale", "smoothness", *metrics], rows, justify=["right"] * (2 + len(metrics))
    )


def _search_note(report: Any) -> str:
    search = report.search
    if search.found is None:
        return f"target {search.target}: not met even at min_scale {search.evaluated[-1][0]:g}"
    return (
        f"target {search.target}: mildest setting min_scale {search.found:g}, smoothness "
        f"{report.smoothness:g} ({len(search.evaluated)} evaluations); its costs are the last row"
    )
