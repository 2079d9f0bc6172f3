"""User errors to one line: one table from typed errors (ours, Typer's usage errors) to what users read."""

from __future__ import annotations

import re

import typer

from smoothie_cli.errors import SmoothieError

# Typer's usage-error base class (bad option values, unknown options, missing arguments): taken from the
# public BadParameter's ancestry, because Typer (which vendors Click from 0.29) does not export it itself
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

# a setting whose flag is not simply --setting-name
FLAGS: dict[str, str] = {
    "tasks": "--task",
    "datasets": "--dataset",
    "presets": "--preset",
    "ranges": "--range",
}

_NOT_ONE_OF = re.compile(r"'(?P<value>[^']*)' is not one of (?P<choices>.+?)\.?$")


def flag_for(setting: str) -> str:
    return FLAGS.get(setting, "--" + setting.replace("_", "-"))


def describe(problem: Exception) -> str:
    """One line for a user-fixable problem: a SmoothieError with the flag of its setting, or a usage error."""
    if isinstance(problem, SmoothieError):
        flag = None if problem.setting is None else flag_for(problem.setting)
        text = problem.message if flag is None else f"{flag}: {problem.message}"
    else:
        text = _usage(problem)
    return text.replace("\n", "\\n")  # one line, even when it quotes a file's text


def _usage(problem: Exception) -> str:
    message = problem.format_message() if hasattr(problem, "format_message") else str(problem)
    param = getattr(problem, "param", None)
    choice = _NOT_ONE_OF.search(message)
    if choice and param is not None and getattr(param, "opts", None):
        flag, value = param.opts[0], choice["value"]
        choices = [c.strip() for c in choice["choices"].replace("'", "").split(",")]
        if len(choices) == 2:
            return f"{flag} must be {choices[0]} or {choices[1]}, not '{value}'"
        return f"unknown {flag} '{value}'; choose from {', '.join(choices)}"
    ctx = getattr(problem, "ctx", None)
    return message + (f" (see {ctx.command_path} --help)" if ctx is not None else "")
