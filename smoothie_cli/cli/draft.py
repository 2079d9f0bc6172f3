"""`smoothie draft …` (hidden): the maintainer's steps that make the shipped cautious draft — refit its gate
probe, calibrate the int8 draft's own reading, ship a trained draft into the package. `make gate-draft` and
`make gate-probe` run them; users never need them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from smoothie_cli import ui

app = typer.Typer(
    name="draft",
    help="Maintainer steps for the shipped cautious draft (refit-probe, calibrate-int8, ship).",
    no_args_is_help=True,
    add_completion=False,
)

DraftDir = Annotated[Path, typer.Argument(help="A calibrated draft directory (finetune-draft output).")]


@app.command("refit-probe")
def refit_probe(directory: DraftDir) -> None:
    """Fit and calibrate the gate probe on the moderation train split; write gate-probe.safetensors and
    gate.json (reading "probe") in DIRECTORY."""
    from smoothie_cli.cautious.probe import add_probe

    with ui.progress_bar() as progress:
        calibration = add_probe(directory, progress)
    ui.print_json(asdict(calibration))


@app.command("calibrate-int8")
def calibrate_int8(directory: DraftDir) -> None:
    """Calibrate the int8 draft's own reading (its own probe for a probe gate) and write gate-int8.json."""
    from smoothie_cli.cautious.quantize import write_int8_reading

    with ui.progress_bar() as progress:
        calibration = write_int8_reading(directory, progress)
    ui.print_json(asdict(calibration))


@app.command("ship")
def ship(
    trained: DraftDir,
    destination: Annotated[Path, typer.Argument(help="Where the shipped copy goes (replaced atomically).")],
    scores: Annotated[
        Path | None, typer.Option("--scores", help="A `gate-report --json` document for the card's table.")
    ] = None,
) -> None:
    """Write the shipped copy of a trained draft (float16 LoRA, gate files, card) and print its sha256."""
    from smoothie_cli.cautious.ship import ship_adapter

    result = ship_adapter(trained, destination, _scores(scores))
    ui.print_json(result)
    ui.note(f"pin this sha256 in smoothie_cli/models/embedded.py EMBEDDED_ADAPTERS: {result['sha256']}")


@app.command("card")
def card(
    directory: DraftDir,
    scores: Annotated[Path, typer.Argument(help="A `gate-report --json` document for the card's table.")],
) -> None:
    """Rewrite the card of a shipped draft after its probe was refitted in place."""
    from smoothie_cli.cautious.ship import refresh_probe_card

    refresh_probe_card(directory, _scores(scores))
    ui.note(f"card of {directory} updated")


def _scores(path: Path | None) -> dict | None:
    from smoothie_cli.jsonfile import read_json

    return None if path is None else read_json(path, "gate-report scores")
