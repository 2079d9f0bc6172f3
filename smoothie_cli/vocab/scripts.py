"""Unicode blocks that a language writes in, and the target-character predicate."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_CODE_POINT = 0x10FFFF


@dataclass(frozen=True)
class UnicodeBlock:
    name: str
    start: int
    end: int


def _blocks(*rows: tuple[str, int, int]) -> tuple[UnicodeBlock, ...]:
    return tuple(UnicodeBlock(name, start, end) for name, start, end in rows)


# The 11 CJK blocks of smoothie-qwen's default config, in their order.
CJK = _blocks(
    ("CJK Unified Ideographs", 0x4E00, 0x9FFF),
    ("CJK Unified Ideographs Extension A", 0x3400, 0x4DBF),
    ("CJK Unified Ideographs Extension B", 0x20000, 0x2A6DF),
    ("CJK Compatibility Ideographs", 0xF900, 0xFAFF),
    ("CJK Radicals Supplement", 0x2E80, 0x2EFF),
    ("Kangxi Radicals", 0x2F00, 0x2FDF),
    ("Ideographic Description Characters", 0x2FF0, 0x2FFF),
    ("CJK Symbols and Punctuation", 0x3000, 0x303F),
    ("CJK Strokes", 0x31C0, 0x31EF),
    ("Enclosed CJK Letters and Months", 0x3200, 0x32FF),
    ("CJK Compatibility", 0x3300, 0x33FF),
)

PRESETS: dict[str, tuple[UnicodeBlock, ...]] = {
    "cjk": CJK,
    "hangul": _blocks(
        ("Hangul Jamo", 0x1100, 0x11FF),
        ("Hangul Compatibility Jamo", 0x3130, 0x318F),
        ("Hangul Jamo Extended-A", 0xA960, 0xA97F),
        ("Hangul Syllables", 0xAC00, 0xD7AF),
        ("Hangul Jamo Extended-B", 0xD7B0, 0xD7FF),
    ),
    "kana": _blocks(
        ("Hiragana", 0x3040, 0x309F),
        ("Katakana", 0x30A0, 0x30FF),
        ("Katakana Phonetic Extensions", 0x31F0, 0x31FF),
        ("Halfwidth Katakana", 0xFF65, 0xFF9F),
        ("Kana Extended-B", 0x1AFF0, 0x1AFFF),
        ("Kana Supplement", 0x1B000, 0x1B0FF),
        ("Kana Extended-A", 0x1B100, 0x1B12F),
        ("Small Kana Extension", 0x1B130, 0x1B16F),
    ),
    "cyrillic": _blocks(
        ("Cyrillic", 0x0400, 0x04FF),
        ("Cyrillic Supplement", 0x0500, 0x052F),
        ("Cyrillic Extended-C", 0x1C80, 0x1C8F),
        ("Cyrillic Extended-A", 0x2DE0, 0x2DFF),
        ("Cyrillic Extended-B", 0xA640, 0xA69F),
    ),
    "thai": _blocks(("Thai", 0x0E00, 0x0E7F)),
    "arabic": _blocks(
        ("Arabic", 0x0600, 0x06FF),
        ("Arabic Supplement", 0x0750, 0x077F),
        ("Arabic Extended-A", 0x08A0, 0x08FF),
    ),
}


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
