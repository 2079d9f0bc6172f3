"""Incremental detokenisation: text to show as tokens arrive, never half a character.

Byte-level BPE tokens may end inside a UTF-8 character (Qwen's "broken" tokens), so decoding each token alone
would print U+FFFD. transformers' `TextStreamer` solves this for `generate` and prints to stdout itself; this
returns the text instead, so a CLI and a server can both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TextStream:
    """Feed token ids; get the new printable text each time (held back while it ends mid-character)."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True) -> None:
        self.tokenizer, self.skip = tokenizer, skip_special_tokens
        self.tokens: list[int] = []
        self.shown = 0  # characters already returned

    def push(self, tokens: Sequence[int]) -> str:
        self.tokens.extend(tokens)
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=self.skip)
        if text.endswith("\ufffd"):  # an unfinished character: wait for the bytes that complete it
            return ""
        new, self.shown = text[self.shown :], len(text)
        return new

    def text(self) -> str:
        return self.tokenizer.decode(self.tokens, skip_special_tokens=self.skip)
