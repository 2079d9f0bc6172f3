"""`smoothie gate-report` (a draft's gate per moderation source) and `smoothie gate-holdout`
(leave-one-source-out: train without a source family, score on it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import JsonOpt
from smoothie_cli.config import DEFAULT_MODEL
from smoothie_cli.errors import SmoothieError


def _rows(sources: dict[str, dict[str, Any]]) -> list[list[Any]]:
    from smoothie_cli.cautious.holdout import SCORE_KEYS

    rows = []
    for name, metrics in sources.items():
        cells = [f"{metrics[k][k]:.3f}" if k in metrics else "—" for k in SCORE_KEYS]
        rows.append([name, *cells, metrics["gate_f1"]["n"]])
    return rows


_COLUMNS = ["source", "precision", "recall", "F1", "over-refusal", "AUPRC", "n"]


def gate_report(
    draft: Annotated[str, typer.Argument(help="A calibrated draft (adapter directory or embedded:NAME).")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="A moderation dataset (moderation-test, moderation).")
    ] = "moderation-test",
    as_json: JsonOpt = False,
) -> None:
    """Score a draft's calibrated gate per moderation source (float32 reading)."""
    from smoothie_cli import ui
    from smoothie_cli.cautious.holdout import score_draft_by_source

    with ui.progress_bar() as progress:
        report = score_draft_by_source(draft, dataset, progress)
    if as_json:
        ui.print_json(report)
        return
    title = (
        f"gate per source — {report['draft']} on {report['dataset']} (threshold {report['threshold']:.3f})"
    )
    ui.show(ui.table(title, _COLUMNS, _rows(report["sources"]), justify=["left"] + ["right"] * 6))


def gate_holdout(
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            help="Source family to hold out (repeat; 'all': every source; default: every jailbreak family).",
        ),
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for one draft per family.")] = Path(
        "runs/gate-holdout"
    ),
    reading: Annotated[
        str,
        typer.Option(
            "--reading",
            help="probe: refit the gate probe without each family (no training: the probe reads layers "
            "below the LoRA, features of --draft); margin: train a draft without each family (~25 min each).",
        ),
    ] = "probe",
    draft: Annotated[
        str, typer.Option("--draft", help="The draft whose features the probe reads (--reading probe).")
    ] = "embedded:qwen2.5-coder-0.5b-cautious",
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps per draft.")] = 200,
    resume: Annotated[bool, typer.Option("--resume", help="Continue unfinished drafts.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace finished drafts (probe: refit finished families).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Leave-one-source-out: refit the gate probe (or train a draft) without each family, score it there."""
    import json

    from smoothie_cli import ui
    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.cautious.holdout import leave_one_source_out
    from smoothie_cli.data.moderation import JAILBREAK_SOURCES, SOURCES
    from smoothie_cli.models.atomic import write_text_atomic

    families = list(SOURCES) if family == ["all"] else family or list(JAILBREAK_SOURCES)
    if reading not in ("probe", "margin"):
        raise SmoothieError(f"--reading must be probe or margin, not '{reading}'")
    results = []
    output.mkdir(parents=True, exist_ok=True)
    with ui.progress_bar() as progress:
        if reading == "probe":
            from smoothie_cli.cautious.holdout import probe_holdout

            results = probe_holdout(families, draft, progress, output, force)
            write_text_atomic(output / "probe.json", json.dumps(results, indent=2))
        for name in [] if reading == "probe" else families:
            done = output / f"{name}.json"
            if done.is_file() and not force:  # finished families are kept: the run resumes family by family
                results.append(json.loads(done.read_text()))
                continue
            settings = FinetuneSettings(base=DEFAULT_MODEL, steps=steps)
            result = leave_one_source_out(
                name, output / name, settings, force=force or not resume, resume=resume, progress=progress
            )
            write_text_atomic(done, json.dumps(result, indent=2))
            results.append(result)
    if as_json:
        ui.print_json(results)
        return
    rows = []
    for result in results:
        held = result["held_out"]
        cells = [
            f"{held[k][k]:.3f}" if k in held else "—" for k in ("gate_recall", "gate_f1", "over_refusal")
        ]
        look = result.get("look_alike_over_refusal")
        rows.append([result["family"], *cells, "—" if look is None else f"{look:.3f}", held["gate_f1"]["n"],
                     result["steps"]])  # fmt: skip
    ui.show(
        ui.table(
            "leave-one-source-out: the gate "
            + ("probe refitted" if reading == "probe" else "draft trained")
            + " without the family, scored on all of it",
            ["held-out family", "recall", "F1", "over-refusal", "look-alike over-refusal", "n", "steps"],
            rows,
            justify=["left"] + ["right"] * 6,
        )
    )
