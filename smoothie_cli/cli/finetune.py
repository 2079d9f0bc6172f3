"""`smoothie finetune-draft`: LoRA-tune a draft to open each answer with <Toc> or <Safe>."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import DeviceOpt, GateReading, JsonOpt, ModelArg
from smoothie_cli.config import DEFAULT_MODEL


def finetune_draft(
    base: ModelArg = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Adapter directory to write.")] = Path(
        "runs/cautious-draft"
    ),
    steps: Annotated[
        int, typer.Option("--steps", help="Optimizer steps (200 ≈ 18 min on 2 CPU cores).")
    ] = 200,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per step.")] = 8,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="Training examples at most (default: the whole train split)."),
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (warm-up, then cosine).")] = 5e-4,
    rank: Annotated[int, typer.Option("--rank", help="LoRA rank.")] = 16,
    layers: Annotated[
        int, typer.Option("--layers", help="Adapt only the top N layers (faster backward); 0 = all.")
    ] = 8,
    max_length: Annotated[
        int, typer.Option("--max-length", help="Tokens per training example at most.")
    ] = 192,
    eval_limit: Annotated[
        int, typer.Option("--eval-limit", help="Held-out prompts for the gate metrics (0: skip).")
    ] = 200,
    max_over_refusal: Annotated[
        float,
        typer.Option(
            "--max-over-refusal",
            help="Calibrate the gate's threshold so that the 95% upper bound of its over-refusal on benign "
            "held-out prompts stays under this.",
        ),
    ] = 0.03,
    calibration_percent: Annotated[
        int,
        typer.Option(
            "--calibration-percent", help="Share of the train split held out to calibrate (0: none)."
        ),
    ] = 25,
    gate_reading: Annotated[
        GateReading,
        typer.Option(
            "--gate-reading",
            help="What the calibrated gate thresholds: probe (a linear probe on the draft's layers 10 and "
            "14, cross-fitted on the whole train split) or margin (the first tag token's log-odds).",
        ),
    ] = GateReading.PROBE,  # type: ignore[attr-defined]
    save_every: Annotated[int, typer.Option("--save-every", help="Checkpoint every N steps.")] = 10,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint of this -o.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Also write merged full weights to OUT/merged.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing OUT.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Data order and dropout seed.")] = 0,
    device: DeviceOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Teach a draft model the <Toc>/<Safe> gate (LoRA), and report its gate before and after."""
    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.cautious.finetune import finetune_draft as run
    from smoothie_cli.ui import Output

    settings = FinetuneSettings(
        base=base or DEFAULT_MODEL, steps=steps, batch_size=batch_size, lr=lr, rank=rank,
        layers=layers or None, max_length=max_length, limit=limit, seed=seed, save_every=save_every,
        max_over_refusal=max_over_refusal, calibration_percent=calibration_percent,
        gate_reading=str(gate_reading),
    )  # fmt: skip
    out = Output.of(as_json)
    with out.progress() as progress:
        report = run(
            settings.base, output, settings, resume=resume, force=force, merge=merge,
            eval_limit=eval_limit, device=device, progress=progress,
        )  # fmt: skip
    out.result({k: v for k, v in report.items() if k != "losses"}, lambda _: _table(out, report))
    out.note(
        f"{report['steps']} steps on {report['train_examples']} examples in {report['train_seconds']} s, "
        f"final loss {report['final_loss']}; adapter in {report['output']}"
    )
    if report["calibration"]:
        calibration = report["calibration"]
        out.note(
            f"calibrated gate (gate.json): toxic when log P(<Toc>) − log P(<Safe>) > "
            f"{calibration['threshold']:.3f}, chosen on {report['calibration_examples']} held-out train "
            f"prompts for over-refusal ≤ {calibration['max_over_refusal']:.0%}; speculate and eval use it"
        )


def _table(out: Any, report: dict[str, Any]) -> Any:
    rows = []
    for name, metrics in report["metrics"].items():
        if metrics:
            keys = ("gate_precision", "gate_recall", "gate_f1", "over_refusal", "untagged")
            rows.append([name, *(f"{metrics[k][k]:.3f}" for k in keys), metrics["gate_f1"]["n"]])
    return out.table(
        f"gate on the held-out split — {report['base']}",
        ["draft", "precision", "recall", "F1", "over-refusal", "untagged", "n"],
        rows,
        justify=["left"] + ["right"] * 6,
    )
