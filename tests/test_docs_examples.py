"""The documentation's examples cannot rot.

- Every `smoothie …` line in a fenced bash block of README.md and docs/ names a command that exists and only
  options that command has (checked against the Typer app itself; fast).
- Blocks marked runnable — a fenced ```bash block right after the line `<!-- runnable -->` — are run for real
  (slow: they load the embedded models). The blocks of one page run in order, in one temporary directory,
  with `smoothie` on PATH pointing at this checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    code: str
    runnable: bool


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def bash_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) not in ("bash", "sh", "console"):
            continue
        before = text[: match.start()].rstrip().splitlines()
        runnable = bool(before) and before[-1].strip() == RUNNABLE
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(page, line, match.group(2), runnable))
    return blocks


def smoothie_lines(code: str) -> list[list[str]]:
    """The arguments of every `smoothie …` command in a block (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "smoothie":
            commands.append(words[1:])
    return commands


def _app_commands() -> dict[str, set[str]]:
    """Command name → every option spelling it accepts, from the Typer app."""
    import typer.main

    from smoothie_cli.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("smoothie", [], resilient_parsing=True)
    commands = {}
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        spellings = set()
        for param in command.get_params(sub):
            if param.param_type_name == "option":
                spellings.update(param.opts)
                spellings.update(param.secondary_opts)
        commands[name] = spellings
    return commands


ALL_BLOCKS = [block for page in doc_pages() for block in bash_blocks(page)]
RUNNABLE_PAGES = sorted({block.page for block in ALL_BLOCKS if block.runnable})


def test_docs_have_runnable_examples() -> None:
    """The marker is found (a typo in it would silently run nothing)."""
    assert len(RUNNABLE_PAGES) >= 3, RUNNABLE_PAGES
    for page in doc_pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        marked = sum(line.strip() == RUNNABLE for line in lines)
        found = sum(block.runnable for block in bash_blocks(page))
        assert marked == found, f"{page}: {marked} runnable markers but {found} bash blocks right after them"


def test_every_documented_command_and_option_exists() -> None:
    commands = _app_commands()
    problems = []
    for block in ALL_BLOCKS:
        for words in smoothie_lines(block.code):
            where = f"{block.page.relative_to(ROOT)}:{block.line}"
            if not words or words[0].startswith("-"):
                continue
            name = words[0]
            if name not in commands:
                problems.append(f"{where}: no command 'smoothie {name}'")
                continue
            for word in words[1:]:
                option = word.split("=", 1)[0]
                if option.startswith("-") and option not in commands[name]:
                    problems.append(f"{where}: 'smoothie {name}' has no option {option}")
    assert not problems, "\n".join(problems)


def test_smoothie_lines_parse_continuations_and_comments() -> None:
    code = 'smoothie eval --limit 4 \\\n    --task mc   # a comment\necho "smoothie no"\nsmoothie serve\n'
    assert smoothie_lines(code) == [["eval", "--limit", "4", "--task", "mc"], ["serve"]]


def _shim(directory: Path) -> Path:
    """A `smoothie` on PATH that runs this checkout with this interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "smoothie"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m smoothie_cli "$@"\n', encoding="utf-8")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_runnable_examples_run(page: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{_shim(tmp_path / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    work = tmp_path / "work"
    work.mkdir()
    for block in bash_blocks(page):
        if not block.runnable:
            continue
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
        )
        where = f"{page.relative_to(ROOT)}:{block.line}"
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert done.returncode == 0, f"{where} exited {done.returncode}:\n{output}"
        assert done.stdout.strip(), f"{where} printed nothing on stdout"
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr[-3000:]}"
