"""The one place that knows Rich: consoles, progress bars, tables, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from smoothie_cli.jsonable import finite
from smoothie_cli.progress import step_of

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_json(payload: Any) -> None:
    """Machine output: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(finite(payload), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)


def note(message: str) -> None:
    err.print(f"[dim]{message}[/]", soft_wrap=True)


def stream(text: str) -> None:
    """Text as it is generated: no markup, no newline, shown at once."""
    if text:
        out.file.write(text)
        out.file.flush()


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Any]:
    """A `smoothie_cli.progress.Progress` callable drawing one Rich task per step description."""
    if not enabled or (not err.is_terminal and not _force_progress()):
        yield _LineProgress(enabled)
        return
    with _bar(transient=True) as bar:
        yield _reporter(bar, hide_others=False)


def _force_progress() -> bool:
    import os

    return os.environ.get("SMOOTHIE_PROGRESS") == "1"


class _LineProgress:
    """Without a terminal (CI, pipes): one line when a step starts, none per update."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.seen: set[str] = set()

    def __call__(self, description: str, completed: float, total: float | None = None) -> None:
        step = step_of(description)
        if self.enabled and step not in self.seen:
            self.seen.add(step)
            note(f"{step} …")


def table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], justify: Sequence[str] = ()
) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(columns):
        t.add_column(name, justify=justify[i] if i < len(justify) else "left")  # type: ignore[arg-type]
    for row in rows:
        t.add_row(*(str(cell) for cell in row))
    return t


def show(*renderables: Any) -> None:
    for r in renderables:
        out.print(r)


def score_table(title: str, results: Sequence[Any]) -> Table:
    """Task results: one row per task, dataset and metric, with the 95% interval and n."""
    rows = []
    for result in results:
        for metric, score in result.scores.items():
            rows.append(
                [
                    result.task,
                    result.dataset,
                    metric,
                    f"{score.value:.3f}",
                    f"[{score.low:.3f}, {score.high:.3f}]",
                    score.n,
                ]
            )
    return table(title, ["task", "dataset", "metric", "score", "95% interval", "n"], rows,
                 justify=["left", "left", "left", "right", "right", "right"])  # fmt: skip


@contextmanager
def live_table(title: str, columns: Sequence[str], enabled: bool = True) -> Iterator[tuple[Any, Any]]:
    """A table that fills in row by row above a progress bar; yields (progress callable, add_row)."""
    from rich.console import Group
    from rich.live import Live

    grid = Table(title=title, title_justify="left", header_style="bold", show_header=False)
    rows: list[Sequence[str]] = []

    def add_row(cells: Sequence[str]) -> None:
        rows.append(cells)
        grid.add_row(*cells)

    if not enabled:
        with progress_bar(enabled=False) as report:
            yield report, add_row
        return
    bar = _bar(transient=False)
    with Live(Group(grid, bar), console=err, refresh_per_second=4, transient=True):
        yield _reporter(bar, hide_others=True), add_row


def _bar(transient: bool) -> Progress:
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%")]
    return Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=transient)


def _reporter(bar: Progress, hide_others: bool) -> Any:
    """A `Progress` callable: one Rich task per step description (only the current one shown, if asked)."""
    tasks: dict[str, Any] = {}

    def report(description: str, completed: float, total: float | None = None) -> None:
        step = step_of(description)
        if step not in tasks:
            tasks[step] = bar.add_task(description, total=total)
        bar.update(tasks[step], completed=completed, total=total, visible=True, description=description)
        if hide_others:
            for other, task_id in tasks.items():
                if other != step and not bar.tasks[task_id].finished:
                    bar.update(task_id, visible=False)

    return report
