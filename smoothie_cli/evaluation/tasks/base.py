"""The task interface: every task turns a dataset into scores and per-sample records the same way."""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.errors import SmoothieError
from smoothie_cli.generation.batched import Generator
from smoothie_cli.progress import Progress, no_progress
from smoothie_cli.stats import Score
from smoothie_cli.vocab.scripts import TargetScript


@dataclass
class EvalContext:
    """What a task may use: the model and tokenizer (for log-likelihoods), a generator (for answers, possibly
    through run-time processors or speculation), the target script, and options."""

    model: Any
    tokenizer: Any
    generator: Generator
    script: TargetScript
    logits_processors: list[Any] = field(default_factory=list)
    batch_size: int = 8
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleResult:
    id: str
    prompt: str
    answer: str
    scores: dict[str, float]
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    task: str
    dataset: str
    scores: dict[str, Score]
    samples: list[SampleResult]
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.samples)


class Task(ABC):
    """A task: a name, the metrics it reports, the datasets it runs on by default, and `evaluate`.

    Generation tasks (no-chinese, bertscore) go through `ctx.generator`; scoring tasks (mc) through
    `ctx.model`; classification tasks (toxicity) read `Example.label`.
    """

    name: str = ""
    metrics: tuple[str, ...] = ()
    default_datasets: tuple[str, ...] = ()
    description: str = ""

    def run(self, ctx: EvalContext, dataset: Dataset, progress: Progress = no_progress) -> TaskResult:
        start = time.perf_counter()
        result = self.evaluate(ctx, dataset, progress)
        result.seconds = time.perf_counter() - start
        return result

    @abstractmethod
    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult: ...


@contextmanager
def answer_budget(ctx: EvalContext, default: int) -> Iterator[None]:
    """Let the generator write up to the user's `max_new_tokens` option, else `default` tokens (code needs
    more room than a one-line answer), for the length of the block."""
    generator = ctx.generator
    budget = ctx.options.get("max_new_tokens") or default
    if not hasattr(generator, "max_new_tokens"):
        yield
        return
    before = generator.max_new_tokens  # type: ignore[attr-defined]
    generator.max_new_tokens = budget  # type: ignore[attr-defined]
    try:
        yield
    finally:
        generator.max_new_tokens = before  # type: ignore[attr-defined]


def generate_samples(ctx: EvalContext, examples: Sequence[Example], progress: Progress) -> list[list[str]]:
    """`ctx.options["samples"]` answers per example (default 1), one list per example.

    With more than one sample the generator must sample (temperature > 0); sample k is drawn with seed
    `seed + k`, so the whole set is repeatable.
    """
    count = int(ctx.options.get("samples") or 1)
    if count < 1:
        raise SmoothieError(f"the number of samples must be at least 1, not {count}")
    generator = ctx.generator
    sampling = getattr(generator, "sampling", None)
    # Tasks on one dataset (no-chinese, language, fidelity) read the same answers: generate them once per
    # setting. The cache lives as long as the generator's steering: its processors, or the extra body a
    # server's requests carry (a new setting brings new ones).
    steering = [getattr(generator, name, None) for name in ("logits_processors", "extra_body")]
    cache = ctx.options.get("answer_cache")
    if cache is None or cache[0] is not generator or any(a is not b for a, b in zip(cache[1], steering)):
        cache = ctx.options["answer_cache"] = (generator, steering, {})
    key = (
        count,
        sampling,
        getattr(generator, "max_new_tokens", None),
        tuple((e.system, e.prompt) for e in examples),
    )
    if key not in cache[2]:
        cache[2][key] = _generate(generator, sampling, examples, count, progress)
    return [list(row) for row in cache[2][key]]


def _generate(
    generator: Any, sampling: Any, examples: Sequence[Example], count: int, progress: Progress
) -> list[list[str]]:
    if count == 1:
        return [[a] for a in generator.generate(examples, progress)]
    if sampling is None or sampling.greedy:
        raise SmoothieError("several samples per prompt need sampling: set a temperature above 0")
    answers: list[list[str]] = [[] for _ in examples]
    base = sampling.seed if sampling.seed is not None else 0
    try:
        for k in range(count):
            generator.sampling = dataclasses.replace(sampling, seed=base + k)  # type: ignore[attr-defined]
            for row, answer in zip(answers, generator.generate(examples, progress)):
                row.append(answer)
    finally:
        generator.sampling = sampling  # type: ignore[attr-defined]
    return answers
