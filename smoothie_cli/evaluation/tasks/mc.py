"""mc: multiple-choice accuracy.

Three styles. By option log-likelihood, as lm-evaluation-harness computes it: `letters` (MMLU in the harness:
the question lists the options A–D and the continuations are " A" … " D") and `text` (the continuation is the
option's own text; acc_norm divides by its length in bytes). And `generate`: the model writes its answer in
its chat template, greedy or sampled, through the same logits processors as any generation, and the answer is
parsed for a letter or an option's text. Smoothing cannot move the first two on MMLU (" A"…" D" are not target
tokens); it can move the third, which is how a user meets the model.
"""

from __future__ import annotations

import dataclasses
import re

from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.scoring import LogitsCache, loglikelihoods
from smoothie_cli.evaluation.tasks.base import (
    EvalContext,
    SampleResult,
    Task,
    TaskResult,
    answer_budget,
    generate_samples,
)
from smoothie_cli.progress import Progress
from smoothie_cli.stats import per_prompt, proportion

LETTERS = "ABCDEFGHIJ"


def letters_prompt(example: Example) -> str:
    assert example.choices is not None
    topic = str(example.meta.get("topic", "")).replace("_", " ").strip()
    header = f"The following are multiple choice questions (with answers) about {topic}.\n\n" if topic else ""
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(example.choices))
    return f"{header}{example.prompt.strip()}\n{options}\nAnswer:"


def option_pairs(example: Example, style: str) -> list[tuple[str, str]]:
    assert example.choices is not None
    if style == "letters":
        context = letters_prompt(example)
        return [(context, f" {LETTERS[i]}") for i in range(len(example.choices))]
    context = f"Question: {example.prompt.strip()}\nAnswer:"
    return [(context, f" {c}") for c in example.choices]


STYLES = ("letters", "text", "generate")
ANSWER_TOKENS = 48  # a letter or an option, perhaps after a short sentence
_LETTER_PATTERNS = (
    r"^\s*\(?([A-J])\s*(?:[).:,]|$)",  # "B", "B.", "(B) …" (not "A good …")
    r"(?i:answer|option|choice)\s*(?:is|:)?\s*(?:\*\*)?\s*\(?([A-J])\b",  # "The answer is B", "Answer: (B)"
    r"\*\*\(?([A-J])[).:]?\*\*",  # "**B**"
)


def shows_options(example: Example) -> bool:
    """Whether the example's own text already lists its options (the Korean closed sets do, in their system
    message); otherwise the generate style lists them with letters."""
    assert example.choices is not None
    text = f"{example.system or ''}\n{example.prompt}"
    return all(c in text for c in example.choices)


def generate_prompt(example: Example) -> Example:
    """The example as the generate style asks it: unchanged when it states its options, else the question,
    its options lettered A–…, and an instruction to answer with the letter."""
    if shows_options(example):
        return example
    assert example.choices is not None
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(example.choices))
    letters = ", ".join(LETTERS[: len(example.choices)])
    prompt = (
        f"{example.prompt.strip()}\n\n{options}\n\nAnswer with the letter ({letters}) of the correct option."
    )
    return dataclasses.replace(example, prompt=prompt)


def parse_choice(answer: str, choices: tuple[str, ...], lettered: bool) -> int | None:
    """The option an answer picks: a letter (when options were lettered), else the option text that appears
    first (the longest at a tie, so "non-honorific" is not read as "honorific"); None when neither."""
    if lettered:
        for pattern in _LETTER_PATTERNS:
            found = re.search(pattern, answer, re.M)
            if found and LETTERS.index(found.group(1)) < len(choices):
                return LETTERS.index(found.group(1))
    best: tuple[int, int, int] | None = None  # (position, -length, index)
    for index, choice in enumerate(choices):
        text = choice.strip()
        if not text:
            continue
        left = r"(?<![A-Za-z0-9])" if text[0].isascii() and text[0].isalnum() else ""
        right = r"(?![A-Za-z0-9])" if text[-1].isascii() and text[-1].isalnum() else ""
        found = re.search(left + re.escape(text) + right, answer, re.I)
        if found:
            key = (found.start(), -len(text), index)
            best = key if best is None or key < best else best
    return None if best is None else best[2]


class MultipleChoiceTask(Task):
    name = "mc"
    metrics = ("acc", "acc_norm")
    default_datasets = ("mmlu",)
    description = "pick the option with the highest log-likelihood (acc; acc_norm divides by option length)"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        style = ctx.options.get("mc_style", "letters")
        if style not in STYLES:
            raise SmoothieError(f"unknown multiple-choice style '{style}'; use {', '.join(STYLES)}")
        examples = [e for e in dataset.examples if e.choices and e.answer is not None]
        if not examples:
            raise SmoothieError(f"dataset '{dataset.name}' has no multiple-choice items (choices + answer)")
        if style == "generate":
            return self._generated(ctx, dataset.name, examples, progress)
        pairs, owners = [], []
        for k, example in enumerate(examples):
            for pair in option_pairs(example, style):
                pairs.append(pair)
                owners.append(k)
        cache = ctx.options.setdefault("logits_cache", LogitsCache())  # shared by the settings of a sweep
        scored = loglikelihoods(
            ctx.model, ctx.tokenizer, pairs, ctx.batch_size, ctx.logits_processors, progress, cache=cache
        )
        per_example: list[list[tuple[float, float]]] = [[] for _ in examples]
        for (_, continuation), (logprob, _), k in zip(pairs, scored, owners):
            per_example[k].append((logprob, logprob / max(1, len(continuation.encode("utf-8")))))
        samples = []
        for example, options in zip(examples, per_example):
            best = max(range(len(options)), key=lambda i: options[i][0])
            best_norm = max(range(len(options)), key=lambda i: options[i][1])
            samples.append(
                SampleResult(
                    example.id,
                    example.prompt,
                    LETTERS[best] if style == "letters" else example.choices[best],  # type: ignore[index]
                    {"acc": float(best == example.answer), "acc_norm": float(best_norm == example.answer)},
                    reference=str(example.answer),
                    meta={"logprobs": [round(o[0], 4) for o in options], **example.meta},
                )
            )
        scores = {m: proportion([s.scores[m] for s in samples]) for m in self.metrics}
        return TaskResult(self.name, dataset.name, scores, samples)

    def _generated(
        self, ctx: EvalContext, name: str, examples: list[Example], progress: Progress
    ) -> TaskResult:
        """acc: the parsed option is right (an unparsable answer is wrong); answered: an option was parsed."""
        asked = [generate_prompt(e) for e in examples]
        with answer_budget(ctx, ANSWER_TOKENS):
            answers = generate_samples(ctx, asked, progress)
        samples, rights, parsed = [], [], []
        for example, question, row in zip(examples, asked, answers):
            assert example.choices is not None
            lettered = question is not example
            picks = [parse_choice(a, example.choices, lettered) for a in row]
            rights.append([float(p == example.answer) for p in picks])
            parsed.append([float(p is not None) for p in picks])
            samples.append(
                SampleResult(
                    example.id,
                    question.prompt,
                    row[0],
                    {"acc": sum(rights[-1]) / len(row), "answered": sum(parsed[-1]) / len(row)},
                    reference=str(example.answer),
                    meta={"picked": picks, **example.meta, **({"answers": row} if len(row) > 1 else {})},
                )
            )
        return TaskResult(
            self.name, name, {"acc": per_prompt(rights), "answered": per_prompt(parsed)}, samples
        )
