"""no-chinese: the share of answers that contain no target character (smoothie-qwen's chin_prom / chin_cs)."""

from __future__ import annotations

from smoothie_cli.evaluation.examples import Dataset
from smoothie_cli.evaluation.stats import proportion
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult
from smoothie_cli.progress import Progress


class NoChineseTask(Task):
    name = "no-chinese"
    metrics = ("no_chinese",)
    default_datasets = ("chinese-elicit", "korean")
    description = "generate an answer; 1 when it holds no target-script character (same predicate as analyze)"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        answers = ctx.generator.generate(dataset.examples, progress)
        samples = [
            SampleResult(
                e.id, e.prompt, a, {"no_chinese": 0.0 if ctx.script.has_target_char(a) else 1.0}, meta=e.meta
            )
            for e, a in zip(dataset.examples, answers)
        ]
        return TaskResult(
            self.name,
            dataset.name,
            {"no_chinese": proportion([s.scores["no_chinese"] for s in samples])},
            samples,
        )
