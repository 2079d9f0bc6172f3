"""Unicode blocks that a language writes in, and the target-character predicate."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from smoothie_cli.unicode_blocks import MAX_CODE_POINT, PRESETS, UnicodeBlock


class TargetScript:
    """Answers "is this character a target character?" for a set of code-point ranges.

    A character counts when it lies in one of the ranges and is not ASCII, not a space and not a digit
    (smoothie-qwen's predicate, so a range that covers ASCII never flags plain English).
    """

    def __init__(self, blocks: Iterable[UnicodeBlock]) -> None:
        self.blocks = tuple(blocks)
        merged: list[list[int]] = []
        for start, end in sorted((b.start, b.end) for b in self.blocks):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]
        self._regex: re.Pattern[str] | None = None

    def contains_code_point(self, cp: int) -> bool:
        i = bisect_right(self._starts, cp) - 1
        return i >= 0 and cp <= self._ends[i]

    def is_target_char(self, ch: str) -> bool:
        if ch.isascii() or ch.isspace() or ch.isdigit():
            return False
        return self.contains_code_point(ord(ch))

    def has_target_char(self, text: str) -> bool:
        return self._pattern().search(text) is not None

    def _pattern(self) -> re.Pattern[str]:
        """One regex character class of exactly the target characters (C-speed search over a vocabulary)."""
        if self._regex is None:
            runs: list[str] = []
            for start, end in zip(self._starts, self._ends):
                run_start = None
                for cp in range(start, end + 2):
                    inside = cp <= end and self.is_target_char(chr(cp))
                    if inside and run_start is None:
                        run_start = cp
                    elif not inside and run_start is not None:
                        runs.append(f"{re.escape(chr(run_start))}-{re.escape(chr(cp - 1))}")
                        run_start = None
            self._regex = re.compile(f"[{''.join(runs)}]" if runs else r"(?!x)x")
        return self._regex

    def block_of(self, ch: str) -> str | None:
        cp = ord(ch)
        for block in self.blocks:
            if block.start <= cp <= block.end:
                return block.name
        return None


def blocks_for(presets: Sequence[str]) -> list[UnicodeBlock]:
    """The blocks of the named presets, in order, without repeats."""
    out: list[UnicodeBlock] = []
    for name in presets:
        for block in PRESETS[name]:
            if block not in out:
                out.append(block)
    return out


def code_point_mask(script: TargetScript):
    """A numpy bool array over all code points: True where `script.is_target_char` holds."""
    import numpy as np

    mask = np.zeros(MAX_CODE_POINT + 1, dtype=bool)
    for start, end in zip(script._starts, script._ends):
        for cp in range(start, end + 1):
            if script.is_target_char(chr(cp)):
                mask[cp] = True
    return mask
