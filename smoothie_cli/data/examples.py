"""The one record every dataset loader yields and every task reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One evaluation item.

    `prompt` is the (last) user message; `system` an optional system message; `history` the earlier turns
    of a conversation ({"role": "user" | "assistant", "content"} messages, oldest first). Multiple-choice
    items carry `choices` and the index of the correct one in `answer`; generation items may carry a
    `reference` answer; classification items (toxic/safe) a `label`.
    """

    id: str
    prompt: str
    system: str | None = None
    reference: str | None = None
    choices: tuple[str, ...] | None = None
    answer: int | None = None
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    history: tuple[dict[str, str], ...] = ()

    def messages(self) -> list[dict[str, str]]:
        """The whole conversation as chat messages: the system message, the earlier turns, the prompt."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, *self.history, {"role": "user", "content": self.prompt}]

    @property
    def identity(self) -> str:
        """The text that makes two rows the same: the prompt, with the system message and the earlier turns
        when there are any."""
        if not self.history and not self.system:
            return self.prompt
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in self.messages())

    @property
    def split_key(self) -> str:
        """What splits and folds hash: `meta["split_key"]` when a row was derived from another (a
        conversation built around a prompt goes wherever that prompt goes), else the prompt, with the earlier
        turns when there are any (a system message alone does not move a prompt to another split)."""
        if "split_key" in self.meta:
            return str(self.meta["split_key"])
        return self.identity if self.history else self.prompt


@dataclass
class Dataset:
    name: str
    examples: list[Example]
    source: str = ""  # where it was read from (package==version:member, hub id, file path)
    license: str = ""
