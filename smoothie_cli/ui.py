"""The one place that knows Rich: the output object, tables that fit the terminal, progress bars.

Commands make one `Output` from their flags and hand it their results; they never branch on `--json`:

    out = Output.of(as_json)                     # human, or one JSON document
    out = Output.of(as_json, lines=True)         # human, or JSON Lines (one object per streamed item)
    with out.progress() as progress: ...         # bars (a terminal) or one line per step, on stderr
    out.record(item, render=show_item)           # a streamed item: a JSON line, or show_item(item) for people
    out.result(summary, render=tables)           # the result: JSON (one document or one line), or tables
    out.note("wrote …")                          # a log line on stderr (not in quiet mode)

Results go to stdout and everything else (progress, notes, errors) to stderr, so `smoothie … --json | jq`
works. Human tables fit the console: long cells are cut with an ellipsis (the full text stays in the JSON),
and a table that cannot fit even then is shown vertically, one key/value block per row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from smoothie_cli.jsonable import finite
from smoothie_cli.progress import step_of

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

MIN_CUT = 12  # a column cut with an ellipsis keeps at least this many cells (or its header's width)


class Mode(str, Enum):
    """How a command's results are written."""

    HUMAN = "human"  # Rich tables and text on stdout
    JSON = "json"  # one JSON document on stdout (streamed items: one JSON line each)
    JSONL = "jsonl"  # JSON Lines on stdout: one object per streamed item and one for the result
    QUIET = "quiet"  # nothing on stdout; errors only on stderr


Render = Callable[[Any], Any]  # payload → a renderable, an iterable of them, or None (it printed itself)


class Output:
    """One command's output: results on stdout in the chosen mode, progress and logs on stderr."""

    def __init__(self, mode: Mode = Mode.HUMAN, *, stdout: Console | None = None,
                 stderr: Console | None = None) -> None:  # fmt: skip
        self.mode = mode
        self.stdout = stdout or out
        self.stderr = stderr or err

    @classmethod
    def of(cls, as_json: bool = False, *, lines: bool = False, quiet: bool = False) -> Output:
        """The output for a command's flags: `--json` (one document; JSON Lines when `lines`), `--quiet`."""
        if as_json:
            return cls(Mode.JSONL if lines else Mode.JSON)
        return cls(Mode.QUIET if quiet else Mode.HUMAN)

    @property
    def human(self) -> bool:
        return self.mode is Mode.HUMAN

    # ---- results (stdout) ----------------------------------------------------------------------------------

    def result(self, payload: Any, render: Render | None = None) -> None:
        """The command's result: one JSON document (JSON), one JSON line (JSONL), or `render(payload)`."""
        if self.mode is Mode.JSON:
            self._write(json.dumps(finite(payload), indent=2, ensure_ascii=False, allow_nan=False))
        elif self.mode is Mode.JSONL:
            if payload is not None:
                self._write(_line(payload))
        elif self.mode is Mode.HUMAN and render is not None:
            self.show(render(payload))

    def record(self, payload: Any, render: Render | None = None) -> None:
        """One item of a stream, written as it comes: a JSON line (JSON, JSONL), or `render(payload)`."""
        if self.mode in (Mode.JSON, Mode.JSONL):
            self._write(_line(payload))
        elif self.mode is Mode.HUMAN and render is not None:
            self.show(render(payload))

    def show(self, *renderables: Any) -> None:
        """Tables or text for people (human mode only); lists are flattened and None is skipped."""
        if not self.human:
            return
        for item in renderables:
            if item is None:
                continue
            if isinstance(item, (list, tuple)):
                self.show(*item)
            else:
                self.stdout.print(item, soft_wrap=isinstance(item, str))

    def text(self, markup: str) -> None:
        """A line of Rich markup for people, never wrapped (human mode only)."""
        if self.human:
            self.stdout.print(markup, soft_wrap=True)

    def stream(self, text: str) -> None:
        """Text as it is generated: no markup, no newline, shown at once (human mode only)."""
        if self.human and text:
            self.stdout.file.write(text)
            self.stdout.file.flush()

    @staticmethod
    def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], justify: Sequence[str] = (),
              cut: Iterable[str] = ()) -> FitTable:  # fmt: skip
        return FitTable(title, columns, rows, justify, cut)

    def _write(self, line: str) -> None:
        self.stdout.file.write(line + "\n")
        self.stdout.file.flush()

    # ---- logs and progress (stderr) ------------------------------------------------------------------------

    def note(self, message: str) -> None:
        if self.mode is not Mode.QUIET:
            self.stderr.print(f"[dim]{escape(message)}[/]", soft_wrap=True)

    def error(self, message: str) -> None:
        # escaped: a message may quote a file's text, and "[/x]" in it would be read as (broken) markup
        self.stderr.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)

    @contextmanager
    def progress(self, enabled: bool = True) -> Iterator[Any]:
        """A `smoothie_cli.progress.Progress` callable: bars on a terminal, else a line per step (stderr)."""
        with progress_bar(enabled and self.mode is not Mode.QUIET, self.stderr) as report:
            yield report

    @contextmanager
    def live_table(self, title: str, columns: Sequence[str]) -> Iterator[tuple[Any, Any]]:
        """Rows shown as they come above a progress bar (human mode; else plain progress lines)."""
        with live_table(title, columns, enabled=self.human) as pair:
            yield pair


def _line(payload: Any) -> str:
    return json.dumps(finite(payload), ensure_ascii=False, allow_nan=False, default=str)


# ---- tables that fit ---------------------------------------------------------------------------------------


class FitTable:
    """A table sized when it is printed: as is when it fits; else the `cut` columns (default: the left-aligned
    ones) are cut with an ellipsis, widest first, down to `MIN_CUT` cells, first with borders, then without;
    else one key/value block per row."""

    def __init__(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 justify: Sequence[str] = (), cut: Iterable[str] = ()) -> None:  # fmt: skip
        self.title, self.columns = title, list(columns)
        self.rows = [[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row] for row in rows]
        self.justify = [justify[i] if i < len(justify) else "left" for i in range(len(self.columns))]
        named = set(cut)
        left = [i for i, how in enumerate(self.justify) if how == "left"]
        self.cut = [i for i, name in enumerate(self.columns) if name in named] if named else left

    def widths(self, room: int, overhead: int) -> list[int] | None:
        """Column widths that fit `room` cells with `overhead` cells of borders and padding, or None."""
        natural = [
            max([cell_len(name), *(row[i].cell_len for row in self.rows if i < len(row))])
            for i, name in enumerate(self.columns)
        ]
        space = room - overhead
        widths = list(natural)
        while sum(widths) > space:
            floors = {i: min(natural[i], max(MIN_CUT, cell_len(self.columns[i]))) for i in self.cut}
            shrinkable = [i for i in self.cut if widths[i] > floors[i]]
            if not shrinkable:
                return None
            widest = max(shrinkable, key=lambda i: widths[i])
            widths[widest] = max(floors[widest], widths[widest] - (sum(widths) - space))
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        n = len(self.columns)
        boxed = self.widths(options.max_width, 3 * n + 1)  # │ a │ b │: a border and two padding cells each
        if boxed is not None:
            yield self._horizontal(boxed, compact=False)
            return
        compact = self.widths(options.max_width, 2 * n - 2)  # a rule under the header, one space apart
        yield self._vertical() if compact is None else self._horizontal(compact, compact=True)

    def _horizontal(self, widths: list[int], compact: bool) -> Table:
        table = Table(title=self.title, title_justify="left", header_style="bold")
        if compact:
            table = Table(title=self.title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                          show_edge=False, pad_edge=False, collapse_padding=True)  # fmt: skip
        for name, width, justify in zip(self.columns, widths, self.justify):
            table.add_column(name, justify=justify, width=width, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
        for row in self.rows:
            table.add_row(*row)
        return table

    def _vertical(self) -> Table:
        table = Table(title=self.title, title_justify="left", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for row in self.rows:
            for i, (name, cell) in enumerate(zip(self.columns, row)):
                if i in self.cut:  # a long prompt stays one line, cut with an ellipsis (--json has it whole)
                    cell = cell.copy()
                    cell.no_wrap, cell.overflow = True, "ellipsis"
                table.add_row(name, cell, end_section=i == len(row) - 1)
        return table


# ---- module-level helpers (the process's default output) ---------------------------------------------------


def print_json(payload: Any) -> None:
    """Machine output: one JSON document on stdout, nothing else."""
    Output(Mode.JSON).result(payload)


def error(message: str) -> None:
    Output().error(message)


def note(message: str) -> None:
    Output().note(message)


def stream(text: str) -> None:
    """Text as it is generated: no markup, no newline, shown at once."""
    Output().stream(text)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], justify: Sequence[str] = (),
          cut: Iterable[str] = ()) -> FitTable:  # fmt: skip
    return FitTable(title, columns, rows, justify, cut)


def show(*renderables: Any) -> None:
    Output().show(*renderables)


def score_table(title: str, results: Sequence[Any]) -> FitTable:
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
def progress_bar(enabled: bool = True, console: Console | None = None) -> Iterator[Any]:
    """A `smoothie_cli.progress.Progress` callable drawing one Rich task per step description."""
    console = console or err
    if not enabled or (not console.is_terminal and os.environ.get("SMOOTHIE_PROGRESS") != "1"):
        yield _LineProgress(enabled, console)
        return
    with _bar(transient=True, console=console) as bar:
        yield _reporter(bar, hide_others=False)


class _LineProgress:
    """Without a terminal (CI, pipes): one line when a step starts, none per update."""

    def __init__(self, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or err
        self.seen: set[str] = set()

    def __call__(self, description: str, completed: float, total: float | None = None) -> None:
        step = step_of(description)
        if self.enabled and step not in self.seen:
            self.seen.add(step)
            self.console.print(f"[dim]{escape(step)} …[/]", soft_wrap=True)


@contextmanager
def live_table(title: str, columns: Sequence[str], enabled: bool = True) -> Iterator[tuple[Any, Any]]:
    """A table that fills in row by row above a progress bar; yields (progress callable, add_row)."""
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


def _bar(transient: bool, console: Console | None = None) -> Progress:
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%")]
    return Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console or err,
                    transient=transient)  # fmt: skip


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
