"""The one record every dataset loader yields and every task reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One evaluation item.

    `prompt` is the user message; `system` an optional system message. Multiple-choice items carry
    `choices` and the index of the correct one in `answer`; generation items may carry a `reference`
    answer; classification items (toxic/safe) a `label`.
    """

    id: str
    prompt: str
    system: str | None = None
    reference: str | None = None
    choices: tuple[str, ...] | None = None
    answer: int | None = None
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    name: str
    examples: list[Example]
    source: str = ""  # where it was read from (package==version:member, hub id, file path)
    license: str = ""
