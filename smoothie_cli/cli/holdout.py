"""`smoothie gate-report` (a draft's gate per moderation source) and `smoothie gate-holdout`
(leave-one-source-out: train without a source family, score on it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import GateReading, JsonOpt


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
    from smoothie_cli.cautious.holdout import score_draft_by_source
    from smoothie_cli.ui import Output

    out = Output.of(as_json)
    with out.progress() as progress:
        report = score_draft_by_source(draft, dataset, progress)
    title = (
        f"gate per source — {report['draft']} on {report['dataset']} (threshold {report['threshold']:.3f})"
    )
    out.result(
        report,
        lambda _: out.table(title, _COLUMNS, _rows(report["sources"]), justify=["left"] + ["right"] * 6),
    )


def gate_holdout(
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            help="Source family to hold out (repeat; or a group: all, jailbreaks, everyday, conversations; "
            "default: jailbreaks).",
        ),
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for one draft per family.")] = Path(
        "runs/gate-holdout"
    ),
    reading: Annotated[
        GateReading,
        typer.Option(
            "--reading",
            help="probe: refit the gate probe without each family (no training: the probe reads layers "
            "below the LoRA, features of --draft); margin: train a draft without each family (~25 min each).",
        ),
    ] = GateReading.PROBE,  # type: ignore[attr-defined]
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
    from smoothie_cli.evaluation.holdout import gate_holdout as run
    from smoothie_cli.evaluation.holdout import holdout_families
    from smoothie_cli.ui import Output

    out = Output.of(as_json)
    with out.progress() as progress:
        results = run(holdout_families(family), output, reading=str(reading), draft=draft, steps=steps,
                      resume=resume, force=force, progress=progress)  # fmt: skip
    out.result(results, lambda _: _holdout_table(out, results, str(reading)))


def _holdout_table(out: Any, results: list[dict[str, Any]], reading: str) -> Any:
    rows = []
    for result in results:
        held = result["held_out"]
        cells = [
            f"{held[k][k]:.3f}" if k in held else "—" for k in ("gate_recall", "gate_f1", "over_refusal")
        ]
        look = result.get("look_alike_over_refusal")
        rows.append([result["family"], *cells, "—" if look is None else f"{look:.3f}", held["gate_f1"]["n"],
                     result["steps"]])  # fmt: skip
    how = "probe refitted" if reading == "probe" else "draft trained"
    return out.table(
        f"leave-one-source-out: the gate {how} without the family, scored on all of it",
        ["held-out family", "recall", "F1", "over-refusal", "look-alike over-refusal", "n", "steps"],
        rows,
        justify=["left"] + ["right"] * 6,
    )
