"""language: does the answer stay in the language of the prompt (the Language Confusion Benchmark's
line-level pass rate, with the same identifier, fastText lid.176; see `evaluation/language.py`).

The expected language is the dataset's (`meta.language`: korean → ko, japanese → ja) or else the one the
identifier reads in the prompt. For Japanese, CJK smoothing works against the language by design: kanji are
target characters, so a smoothed model may write kana or drift into another language.
"""

from __future__ import annotations

from smoothie_cli.data.examples import Dataset
from smoothie_cli.evaluation.language import identify, stays_in
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult, generate_samples
from smoothie_cli.progress import Progress
from smoothie_cli.stats import per_prompt


class LanguageTask(Task):
    name = "language"
    metrics = ("language",)
    default_datasets = ("korean", "korean-open", "mtbench", "japanese")
    description = "generate an answer; 1 when every line of ≥ 5 tokens is in the prompt's language (lid.176)"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        answers = generate_samples(ctx, dataset.examples, progress)
        samples, outcomes = [], []
        for example, row in zip(dataset.examples, answers):
            expected = str(example.meta.get("language") or identify(example.prompt))
            verdicts = [stays_in(a, expected) for a in row]
            outcomes.append([float(ok) for ok, _ in verdicts])
            samples.append(
                SampleResult(
                    example.id,
                    example.prompt,
                    row[0],
                    {"language": sum(outcomes[-1]) / len(row)},
                    meta={
                        "expected": expected,
                        "lines": [[v.language for v in lines] for _, lines in verdicts],
                        **({"answers": row} if len(row) > 1 else {}),
                    },
                )
            )
        return TaskResult(self.name, dataset.name, {"language": per_prompt(outcomes)}, samples)
