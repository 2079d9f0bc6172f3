"""mc --mc-style generate: the model writes its answer; a letter or an option's text is parsed."""

from __future__ import annotations

import pytest

from smoothie_cli.config import SmoothieConfig
from smoothie_cli.data.datasets import load_dataset
from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.evaluation.tasks import EvalContext, get_task
from smoothie_cli.evaluation.tasks.mc import generate_prompt, parse_choice, shows_options
from smoothie_cli.vocab.scripts import TargetScript

ABCD = ("Paris", "London", "Rome", "Berlin")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", 1),
        ("B. London", 1),
        ("(C) Rome", 2),
        ("The answer is D.", 3),
        ("Answer: **A**", 0),
        ("The capital of France is Paris.", 0),  # no letter: the option's text
        ("I am not sure.", None),
        ("E", None),  # no fifth option
        ("A good question: Rome.", 2),  # a sentence that opens with "A"
    ],
)
def test_parse_lettered_answers(answer: str, expected: int | None):
    assert parse_choice(answer, ABCD, lettered=True) == expected


def test_parse_option_texts():
    assert parse_choice("non-honorific", ("honorific", "non-honorific"), lettered=False) == 1
    assert parse_choice("honorific.", ("honorific", "non-honorific"), lettered=False) == 0
    assert parse_choice("No, it is not.", ("Yes", "No"), lettered=False) == 1
    assert parse_choice("Nothing", ("Yes", "No"), lettered=False) is None  # "No" inside a word
    assert parse_choice("서울입니다", ("강원도", "서울"), lettered=False) == 1  # Korean particles attach
    assert parse_choice("A", ("Yes", "No"), lettered=False) is None  # letters only when lettered


def test_prompts_letter_only_what_does_not_state_its_options():
    mmlu = load_dataset("mmlu", limit=3).examples[0]
    assert not shows_options(mmlu) and "\nA. " in generate_prompt(mmlu).prompt
    korean = [e for e in load_dataset("korean").examples if e.choices]
    assert all(shows_options(e) for e in korean)  # all 463 state their options: asked as they are
    assert generate_prompt(korean[0]) is korean[0]


class FixedGenerator:
    name = "fixed"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.prompts: list[str] = []

    def generate(self, examples, progress=None):
        self.prompts = [e.prompt for e in examples]
        return self.answers[: len(examples)]


def test_generate_style_scores_parsed_answers():
    questions = [
        Example("q1", "Capital of France?", choices=ABCD, answer=0),
        Example("q2", "Capital of Italy?", choices=ABCD, answer=2),
        Example("q3", "Capital of Germany?", choices=ABCD, answer=3),
        Example("k1", "이 공원에서 자주 걷습니다.", system="type 'honorific' or 'non-honorific'",
                choices=("honorific", "non-honorific"), answer=0),
    ]  # fmt: skip
    generator = FixedGenerator(["A", "The answer is B.", "I don't know", "honorific"])
    ctx = EvalContext(None, None, generator, TargetScript(SmoothieConfig().blocks()))  # type: ignore[arg-type]
    ctx.options["mc_style"] = "generate"
    result = get_task("mc").run(ctx, Dataset("t", questions))
    assert [s.scores["acc"] for s in result.samples] == [1.0, 0.0, 0.0, 1.0]
    assert result.scores["acc"].value == 0.5 and result.scores["answered"].value == 0.75
    assert "Answer with the letter (A, B, C, D)" in generator.prompts[0]
    assert generator.prompts[3] == "이 공원에서 자주 걷습니다."


def test_generate_style_through_a_real_model(tiny_qwen, cli):
    import json

    code, stdout, _ = cli(["eval", str(tiny_qwen()), "--task", "mc", "--mc-style", "generate", "--dataset",
                           "mmlu", "--limit", "3", "--max-new-tokens", "4", "--json"])  # fmt: skip
    assert code == 0
    entry = json.loads(stdout)["results"]["mc"]["mmlu"]
    assert entry["n"] == 3 and 0.0 <= entry["acc"] <= entry["answered"] <= 1.0
