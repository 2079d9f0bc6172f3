"""no-chinese: the share of answers that contain no target character (smoothie-qwen's chin_prom / chin_cs)."""

from __future__ import annotations

from smoothie_cli.data.examples import Dataset
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult, generate_samples
from smoothie_cli.progress import Progress
from smoothie_cli.stats import per_prompt


class NoChineseTask(Task):
    name = "no-chinese"
    metrics = ("no_chinese",)
    default_datasets = ("chinese-elicit", "korean", "korean-open")
    description = "generate an answer; 1 when it holds no target-script character (same predicate as analyze)"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        answers = generate_samples(ctx, dataset.examples, progress)
        outcomes = [[0.0 if ctx.script.has_target_char(a) else 1.0 for a in row] for row in answers]
        samples = [
            SampleResult(
                e.id,
                e.prompt,
                row[0],
                {"no_chinese": sum(scores) / len(scores)},
                meta={**e.meta, **({"answers": row} if len(row) > 1 else {})},
            )
            for e, row, scores in zip(dataset.examples, answers, outcomes)
        ]
        return TaskResult(self.name, dataset.name, {"no_chinese": per_prompt(outcomes)}, samples)
