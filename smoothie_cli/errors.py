"""Problems a user can fix: `SmoothieError` and its typed kinds.

The core raises them naming the value and the fix; a setting's name may ride along (`setting="min_scale"`),
so a front end can say which of its own options to change. The CLI maps them to one line and exit code 2 in
one place (`smoothie_cli.cli.errors.describe`), adding the flag for the setting.
"""

from __future__ import annotations

from collections.abc import Iterable


class SmoothieError(Exception):
    """A user-fixable problem: the CLI prints it as one line and exits with code 2.

    `message` says what is wrong with which value and how to fix it; `setting` (optional) is the name of the
    setting it is about, as the core's settings objects spell it (`min_scale`, `temperature`).
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting

    def __str__(self) -> str:
        return self.message if self.setting is None else f"{self.setting}: {self.message}"


class BadValue(SmoothieError):
    """A value out of range or malformed (a negative count, 'lots' where a number goes)."""


class UnknownChoice(BadValue):
    """A name that is not one of the choices (a preset, a task, a mode)."""

    def __init__(self, value: str, choices: Iterable[str], *, what: str, setting: str | None = None) -> None:
        self.value, self.choices = value, list(choices)
        super().__init__(f"unknown {what} '{value}'; choose from {', '.join(self.choices)}", setting=setting)


class Conflict(SmoothieError):
    """Two settings that cannot go together (several smoothness values for a one-smoothness search)."""


class NotFound(SmoothieError):
    """A file, directory, model, dataset or package that is not where it was said to be."""


class CannotWrite(SmoothieError):
    """An output that cannot be written (no space, no permission, a file where a directory goes)."""
