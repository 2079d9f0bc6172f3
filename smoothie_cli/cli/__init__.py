"""The `smoothie` command: a thin Typer front door over the core package."""

from __future__ import annotations

import sys

import typer

from smoothie_cli import __version__
from smoothie_cli.cli.analyze import analyze
from smoothie_cli.cli.evaluate import evaluate
from smoothie_cli.cli.finetune import finetune_draft
from smoothie_cli.cli.holdout import gate_holdout, gate_report
from smoothie_cli.cli.serve import serve
from smoothie_cli.cli.smooth import smooth
from smoothie_cli.cli.speculate import speculate
from smoothie_cli.cli.sweep import sweep
from smoothie_cli.errors import SmoothieError

app = typer.Typer(
    name="smoothie",
    help="Steer what Qwen-family models write: language smoothing and cautious speculative decoding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command("analyze", rich_help_panel="Language smoothing")(analyze)
app.command("smooth", rich_help_panel="Language smoothing")(smooth)
app.command("eval", rich_help_panel="Evaluation")(evaluate)
app.command("sweep", rich_help_panel="Language smoothing")(sweep)
app.command("finetune-draft", rich_help_panel="Cautious decoding")(finetune_draft)
app.command("speculate", rich_help_panel="Cautious decoding")(speculate)
app.command("serve", rich_help_panel="Cautious decoding")(serve)
app.command("gate-report", rich_help_panel="Cautious decoding")(gate_report)
app.command("gate-holdout", rich_help_panel="Cautious decoding")(gate_holdout)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smoothie {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """smoothie: language smoothing and cautious speculative decoding for Qwen-family models."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors (ours and usage errors) become one line on stderr and exit code 2, never a
    traceback; results and nothing else go to stdout."""
    from smoothie_cli import ui
    from smoothie_cli.cli.errors import UsageError, describe

    try:
        code = app(args=argv, prog_name="smoothie", standalone_mode=False)
    except (SmoothieError, UsageError) as problem:
        ui.error(describe(problem))
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        ui.error("interrupted; nothing half-written was left behind")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
