"""`smoothie sweep`: a grid of min_scale × smoothness, one model load, resumable, with tables and plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.evaluate import (
    BatchOpt,
    DatasetOpt,
    LimitOpt,
    McStyleOpt,
    SamplesOpt,
    ScalesOpt,
    TaskOpt,
)
from smoothie_cli.cli.options import ConfigOpt, DeviceOpt, JsonOpt, ModelArg, TemperatureOpt, TopPOpt
from smoothie_cli.errors import SmoothieError


def parse_floats(values: list[str] | None, option: str) -> list[float] | None:
    """'1.0,0.9' or repeated options → [1.0, 0.9]."""
    if not values:
        return None
    out = []
    for value in values:
        for part in value.split(","):
            try:
                out.append(float(part))
            except ValueError:
                raise SmoothieError(
                    f"{option} '{part}' is not a number; give a list like 1.0,0.7,0.5"
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
        Path | None, typer.Option("--grid", help="YAML grid (configs/sweep-*.yaml); flags override it.")
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
    batch_size: BatchOpt = 32,
    scales: ScalesOpt = "auto",
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="scale (logit × S, the checkpoint edit), bias (+ log S) or lower (scale, never raising).",
        ),
    ] = None,
    save: Annotated[str, typer.Option("--save", help="Write checkpoints too: none, best or all.")] = "none",
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
    mc_style: McStyleOpt = None,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 1.0,
    samples: SamplesOpt = 1,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Seed for --limit sampling.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a grid of smoothing settings with one model load; finished settings are skipped on re-runs."""
    from smoothie_cli import ui
    from smoothie_cli.config import load_config
    from smoothie_cli.evaluation.runner import plan
    from smoothie_cli.evaluation.session import open_session
    from smoothie_cli.generation.batched import ModelGenerator
    from smoothie_cli.generation.sampling import SamplingConfig
    from smoothie_cli.smoothing.scales import check_parameters
    from smoothie_cli.sweep import grid as make_grid
    from smoothie_cli.sweep import parse_target, run_sweep, write_results

    start = time.perf_counter()
    spec = read_grid(grid)
    min_scales = parse_floats(min_scale, "--min-scale") or [float(v) for v in spec.get("min_scale", [0.5])]
    smoothnesses = parse_floats(smoothness, "--smoothness") or [
        float(v) for v in spec.get("smoothness", [10.0])
    ]
    goal = parse_target(target) if target else None
    if goal is not None:
        if len(smoothnesses) != 1:
            raise SmoothieError("--target searches min_scale at one smoothness; give a single --smoothness")
        if min_scale and len(min_scales) != 2:
            raise SmoothieError("with --target, --min-scale takes the bracket LOW,HIGH (e.g. 0.1,1.0)")
        min_scales = sorted(min_scales) if min_scale else [0.1, 1.0]
    settings = make_grid(min_scales, smoothnesses)
    mode = mode or spec.get("mode", "scale")
    mc_style = mc_style or spec.get("mc_style", "letters")
    temperature = float(spec.get("temperature", temperature)) if temperature == 0.0 else temperature
    top_p = float(spec.get("top_p", top_p)) if top_p == 1.0 else top_p
    samples = int(spec.get("samples", samples)) if samples == 1 else samples
    sampling = SamplingConfig(temperature, top_p, seed=seed)
    if samples > 1 and sampling.greedy:
        raise SmoothieError("--samples above 1 needs sampling: give --temperature above 0")
    if save not in ("none", "best", "all"):
        raise SmoothieError(f"--save '{save}' is not none, best or all")
    tasks = task or spec.get("tasks") or ["no-chinese", "mc"]
    items = plan(tasks, dataset or spec.get("datasets"))
    limit = limit if limit is not None else spec.get("limit")
    max_new = max_new_tokens or int(spec.get("max_new_tokens", 48))
    cfg = load_config(config)
    for setting in settings:
        check_parameters(setting.min_scale, setting.smoothness)
    identity = {
        "model": model or spec.get("model") or cfg.model.name,
        "limit": limit,
        "seed": seed,
        "mode": mode,
        "max_new_tokens": max_new,
        "scales": scales,
        "targets": [list(t.range) for t in cfg.unicode_targets],
    }
    # options that change results join the identity only when set, so earlier runs.jsonl files stay valid
    if mc_style != "letters":
        identity["mc_style"] = mc_style
    if not sampling.greedy:
        identity["sampling"] = {"temperature": temperature, "top_p": top_p, "samples": samples}
    columns = ["min_scale", "smoothness"]
    rows: list[list[str]] = []
    with ui.live_table("sweep", columns, enabled=not as_json) as (progress, add_row):
        session = open_session(
            identity["model"], cfg, device=device, max_new_tokens=max_new, batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
        if isinstance(session.context.generator, ModelGenerator):
            session.context.generator.sampling = sampling
        session.context.options.update({"mc_style": mc_style, "samples": samples})

        def show(run: Any) -> None:
            cells = [f"{run.setting.min_scale:g}", f"{run.setting.smoothness:g}"]
            cells += [f"{k}={v:.3f}" for k, v in sorted(run.scores.items())]
            rows.append(cells)
            add_row(cells + (["(resumed)"] if run.resumed else []))

        def sweep_over(chosen: list[Any], plan_items: list[Any]) -> list[Any]:
            return run_sweep(session, chosen, plan_items, output, identity=identity, scales=scales,
                             mode=mode, limit=limit, seed=seed, on_run=show, warn=ui.note,
                             progress=progress)  # fmt: skip

        search = None
        if goal is not None:
            search, runs = _search(goal, items, smoothnesses[0], min_scales, search_steps, sweep_over)
        else:
            runs = sweep_over(settings, items)
        written = write_results(output, runs)
        if save != "none":
            written += _save_checkpoints(session, runs, save, output, progress)
    summary: dict[str, Any] = {
        "model": session.source.spec,
        **({} if search is None else _search_summary(search, smoothnesses[0])),
        "runs": [r.as_dict() for r in runs],
        "outputs": [str(p) for p in written],
        "seconds": round(time.perf_counter() - start, 2),
    }
    if as_json:
        ui.print_json(summary)
        return
    metrics = sorted({m for r in runs for m in r.scores})
    ui.show(
        ui.table(
            f"sweep — {session.source.spec} ({mode} mode)",
            ["min_scale", "smoothness", *metrics],
            [
                [
                    f"{r.setting.min_scale:g}",
                    f"{r.setting.smoothness:g}",
                    *[f"{r.scores[m]:.3f}" if m in r.scores else "–" for m in metrics],
                ]
                for r in runs
            ],
        )
    )
    if search is not None:
        found = search.found
        ui.note(
            f"target {search.target}: not met even at min_scale {min(min_scales):g}"
            if found is None
            else f"target {search.target}: mildest setting min_scale {found:g}, smoothness "
            f"{smoothnesses[0]:g} ({len(search.evaluated)} evaluations); its costs are the last row"
        )
    for path in written:
        ui.note(f"wrote {path}")


def _search(
    goal: Any, items: list[Any], smoothness: float, bracket: list[float], steps: int, sweep_over: Any
) -> tuple[Any, list[Any]]:
    """Bisect min_scale on the target's own task and dataset, then run every planned item at the setting
    found. Returns the search and the runs to report (search points, then the found setting in full)."""
    from smoothie_cli.evaluation.runner import PlanItem
    from smoothie_cli.evaluation.tasks import TASKS
    from smoothie_cli.sweep import Setting, search_min_scale

    extra = {"mc": ("answered",)}  # reported by the generate style only
    owners = [t.name for t in TASKS.values() if goal.metric in (*t.metrics, *extra.get(t.name, ()))]
    if not owners:
        raise SmoothieError(
            f"no task reports the metric '{goal.metric}' of the target; see smoothie eval --help"
        )
    probe = PlanItem(owners[0], goal.dataset)
    runs: list[Any] = []

    def evaluate(min_scale: float) -> dict[str, float]:
        run = sweep_over([Setting(min_scale, smoothness)], [probe])[0]
        runs.append(run)
        return run.scores

    search = search_min_scale(evaluate, goal, low=bracket[0], high=bracket[-1], steps=steps)
    chosen = search.found if search.found is not None else bracket[0]
    final = sweep_over([Setting(chosen, smoothness)], list(dict.fromkeys([probe, *items])))[0]
    return search, [*runs, final]


def _search_summary(search: Any, smoothness: float) -> dict[str, Any]:
    return {
        "target": str(search.target),
        "found": None if search.found is None else {"min_scale": search.found, "smoothness": smoothness},
        "evaluated": [
            {"min_scale": m, search.target.key: s.get(search.target.key)} for m, s in search.evaluated
        ],
    }


def _save_checkpoints(session: Any, runs: list[Any], save: str, output: Path, progress: Any) -> list[Path]:
    """Checkpoints for all settings, or for the best one (highest mean no_chinese, then the gentler scale)."""
    from smoothie_cli.models import model_directory
    from smoothie_cli.smoothing.checkpoint import smooth_checkpoint
    from smoothie_cli.smoothing.scales import scales_from_analysis

    chosen = runs
    if save == "best":

        def merit(run: Any) -> tuple[float, float]:
            values = [v for k, v in run.scores.items() if k.startswith("no_chinese")]
            return (sum(values) / len(values) if values else 0.0, run.setting.min_scale)

        chosen = [max(runs, key=merit)]
    written = []
    for run in chosen:
        token_scales = scales_from_analysis(
            session.analysis("auto"), run.setting.min_scale, run.setting.smoothness
        )
        target = output / "models" / f"min{run.setting.min_scale}_smooth{run.setting.smoothness}"
        result = smooth_checkpoint(
            model_directory(session.source), target, token_scales, force=True, progress=progress
        )
        written.append(result.output)
    return written
