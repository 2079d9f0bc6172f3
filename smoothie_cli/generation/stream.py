"""Incremental detokenisation: text to show as tokens arrive, never half a character.

Byte-level BPE tokens may end inside a UTF-8 character (Qwen's "broken" tokens), so decoding each token alone
would print U+FFFD. `tokenizers.decoders.DecodeStream` decodes incrementally (a window of recent ids, not the
whole answer on every token) and holds a partial character back; transformers' `TextStreamer` prints to
stdout itself, so this returns the text instead and a CLI and a server can both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TextStream:
    """Feed token ids; get the new printable text each time (held back while it ends mid-character)."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True) -> None:
        from tokenizers.decoders import DecodeStream

        self.tokenizer, self.skip = tokenizer, skip_special_tokens
        # a fast tokenizer's Rust tokenizer; a slow one (no `_tokenizer`) is re-decoded whole instead
        self.backend = getattr(tokenizer, "_tokenizer", None)
        self.decoder = DecodeStream(skip_special_tokens=skip_special_tokens) if self.backend else None
        self.tokens: list[int] = []
        self.shown = 0  # characters already returned

    def push(self, tokens: Sequence[int]) -> str:
        self.tokens.extend(tokens)
        if self.decoder is None:
            text = self.text()
            if text.endswith("\ufffd"):  # an unfinished character: wait for the bytes that complete it
                return ""
            new, self.shown = text[self.shown :], len(text)
            return new
        pieces = [self.decoder.step(self.backend, int(token)) for token in tokens]
        new = "".join(p for p in pieces if p)
        self.shown += len(new)
        return new

    def text(self) -> str:
        """The whole answer so far, decoded at once (with any unfinished character at its end)."""
        return self.tokenizer.decode(self.tokens, skip_special_tokens=self.skip)
