"""The output object: tables that fit 80 columns, one JSON document or JSON Lines, errors as one line."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from smoothie_cli.errors import BadValue, SmoothieError, UnknownChoice
from smoothie_cli.ui import Mode, Output

PROMPT = "Write a Python function that parses an ISO 8601 date with a time zone and returns a datetime"
COLUMNS = ["prompt", "gate", "strategy", "tokens", "tok/s", "accept", "target fwd", "mean γ"]


def _output(mode: Mode = Mode.HUMAN, width: int = 80) -> tuple[Output, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    console = Console(file=stdout, width=width, highlight=False, color_system=None)
    return Output(mode, stdout=console, stderr=Console(file=stderr, width=width)), stdout, stderr


def _stats_rows(n: int = 3) -> list[list[object]]:
    return [[f"{PROMPT} #{i}", "safe", "speculative", 128, "39.87", "0.74", 35, 3.7] for i in range(n)]


@pytest.mark.parametrize("columns", [7, 8])  # 7 fit with borders, 8 only without the outer ones
def test_a_wide_table_cuts_the_long_cells_and_keeps_each_row_on_one_line(columns: int) -> None:
    out, stdout, _ = _output()
    rows = [row[:columns] for row in _stats_rows()]
    out.result({"rows": 3}, lambda _: out.table("speculate", COLUMNS[:columns], rows, cut=["prompt"]))
    lines = stdout.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if "speculative" in line]
    assert len(rows) == 3  # one line per row: nothing wrapped
    assert all("…" in row and "Write a Python" in row for row in rows)
    header = next(line for line in lines if "strategy" in line)
    assert "target fwd" in header  # headers are whole, not one word per line


def test_left_aligned_columns_are_cut_by_default() -> None:
    out, stdout, _ = _output()
    out.show(out.table("t", COLUMNS, _stats_rows(2), justify=["left"] * 3 + ["right"] * 5))
    rows = [line for line in stdout.getvalue().splitlines() if "…" in line]
    assert len(rows) == 2 and all(len(line) <= 80 for line in rows)


def test_a_table_that_cannot_fit_is_shown_one_key_per_line() -> None:
    columns = [f"metric number {i}" for i in range(12)]
    out, stdout, _ = _output()
    row = [f"{0.1 * i:.3f}" for i in range(12)]
    out.show(out.table("many metrics", columns, [row], justify=["right"] * 12))
    lines = stdout.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    for i, name in enumerate(columns):  # every column name and its value on one line
        assert any(name in line and f"{0.1 * i:.3f}" in line for line in lines)


def test_the_key_value_layout_cuts_a_long_prompt_on_one_line() -> None:
    columns = [*COLUMNS, "acc/prop", "s"]  # ten columns: too many for 80 cells, even without borders
    out, stdout, _ = _output()
    rows = [[*row, "27/27", "4.81"] for row in _stats_rows(2)]
    out.show(out.table("speculate", columns, [[PROMPT * 2, *row[1:]] for row in rows], cut=["prompt"]))
    lines = stdout.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    prompts = [line for line in lines if "prompt" in line]
    assert len(prompts) == 2 and all("Write a Python" in line and "…" in line for line in prompts)
    assert not any("datetime" in line for line in lines)  # the rest of the prompt is cut, not folded


def test_a_table_that_fits_is_unchanged() -> None:
    out, stdout, _ = _output()
    out.show(out.table("scores", ["task", "score"], [["no-chinese", "0.990"], ["mc", "0.412"]]))
    text = stdout.getvalue()
    assert "no-chinese" in text and "0.412" in text and "…" not in text


def test_json_mode_writes_one_document_and_no_tables() -> None:
    out, stdout, stderr = _output(Mode.JSON)
    out.note("loading")  # logs go to stderr
    out.show("a table for people")
    out.result({"prompt": PROMPT, "score": 0.5}, lambda _: out.table("t", ["x"], [["y"]]))
    assert json.loads(stdout.getvalue()) == {"prompt": PROMPT, "score": 0.5}  # the full text, not cut
    assert "loading" in stderr.getvalue()


def test_json_lines_mode_writes_one_object_per_record() -> None:
    out, stdout, _ = _output(Mode.JSONL)
    shown: list[object] = []
    for i in range(3):
        out.record({"index": i, "text": "héllo\nworld"}, shown.append)
    out.result(None, lambda _: "stats table")
    assert [json.loads(line)["index"] for line in stdout.getvalue().splitlines()] == [0, 1, 2]
    assert shown == []


def test_human_mode_renders_records_and_quiet_mode_prints_nothing() -> None:
    out, stdout, _ = _output()
    out.record({"text": "an answer"}, lambda item: item["text"])
    assert "an answer" in stdout.getvalue()
    quiet, stdout, stderr = _output(Mode.QUIET)
    quiet.result({"a": 1}, lambda _: "table")
    quiet.note("a log line")
    quiet.error("broken")
    assert stdout.getvalue() == "" and "a log line" not in stderr.getvalue() and "broken" in stderr.getvalue()


def test_output_of_flags() -> None:
    assert Output.of().mode is Mode.HUMAN and Output.of(True).mode is Mode.JSON
    assert Output.of(True, lines=True).mode is Mode.JSONL and Output.of(quiet=True).mode is Mode.QUIET


def test_typed_errors_name_the_value_and_the_cli_adds_the_flag() -> None:
    from smoothie_cli.cli.errors import describe

    problem = BadValue("0 is below 1; give a positive count", setting="max_new_tokens")
    assert str(problem) == "max_new_tokens: 0 is below 1; give a positive count"
    assert describe(problem) == "--max-new-tokens: 0 is below 1; give a positive count"
    choice = UnknownChoice("sideways", ["forward", "backward"], what="direction", setting="direction")
    assert describe(choice) == "--direction: unknown direction 'sideways'; choose from forward, backward"
    assert describe(SmoothieError("line one\nline two")) == "line one\\nline two"


@pytest.mark.parametrize("args", [["analyze", "--direction", "sideways"], ["analyze", "--no-such-flag"]])
def test_usage_errors_are_one_line_exit_2(cli, args: list[str]) -> None:
    code, out, err = cli(args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_cli_choices_are_the_cores() -> None:
    """The option choices are spelled out in cli/options.py (so --help imports nothing heavy): the same as
    the values the core accepts."""
    from smoothie_cli.cli import options
    from smoothie_cli.evaluation.tasks import TASKS
    from smoothie_cli.evaluation.tasks.mc import STYLES
    from smoothie_cli.smoothing.runtime import MODES
    from smoothie_cli.sweep import SAVE_CHOICES
    from smoothie_cli.unicode_blocks import PRESETS

    def values(choice: type) -> list[str]:
        return [member.value for member in choice]

    assert values(options.TaskName) == list(TASKS) and values(options.McStyle) == list(STYLES)
    assert values(options.SmoothMode) == list(MODES) and values(options.Save) == list(SAVE_CHOICES)
    assert values(options.Preset) == list(PRESETS)
    assert str(options.SmoothMode("bias")) == "bias" == f"{options.SmoothMode('bias')}"


def test_analyze_tables_fit_80_columns_and_json_parses(tokenizer_only_dir, cli, monkeypatch) -> None:
    from rich.cells import cell_len

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(["analyze", str(tokenizer_only_dir)])
    assert code == 0 and "26,153" in out
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    code, out, _ = cli(["analyze", str(tokenizer_only_dir), "--json"])
    assert code == 0 and json.loads(out)["target_tokens"] == 26_153
