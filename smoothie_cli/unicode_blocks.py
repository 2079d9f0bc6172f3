"""Unicode blocks a language writes in: the data shared by the config (its defaults) and vocab/ (the
predicate). Kept below both, so neither imports the other's package."""

from __future__ import annotations

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
