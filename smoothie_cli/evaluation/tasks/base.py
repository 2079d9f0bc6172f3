"""The task interface: every task turns a dataset into scores and per-sample records the same way."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from smoothie_cli.evaluation.examples import Dataset
from smoothie_cli.evaluation.stats import Score
from smoothie_cli.generation.batched import Generator
from smoothie_cli.progress import Progress, no_progress
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
