"""How the core reports progress without knowing about Rich: a callable the CLI supplies."""

from __future__ import annotations

from typing import Protocol

DETAIL = " · "  # "step · detail": the step names the bar, the detail (a loss, say) may change each update


class Progress(Protocol):
    def __call__(self, description: str, completed: float, total: float | None = None) -> None:
        """Report that the step `description` has reached `completed` of `total` (None: unknown)."""


def step_of(description: str) -> str:
    return description.split(DETAIL, 1)[0]


def no_progress(description: str, completed: float, total: float | None = None) -> None:
    """The default sink: report nothing."""
