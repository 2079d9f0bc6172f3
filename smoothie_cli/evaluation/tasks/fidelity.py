"""fidelity: how close a steered model's greedy answers stay to the base model's.

`identical` is the share of greedy answers that equal the base model's answer to the same prompt, character
for character; `bertscore_base` their mean BERTScore F1 against the base answers (the offline MiniLM
encoder of the bertscore task). The base answers are generated once per context — once per sweep — with the
same generator and no steering processors, and reused by every setting.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult, generate_samples
from smoothie_cli.evaluation.tasks.bertscore import make_scorer
from smoothie_cli.progress import Progress
from smoothie_cli.stats import mean, proportion


@contextmanager
def _greedy(generator: Any, steering: list[Any] | None = None) -> Iterator[None]:
    """Greedy decoding for the block; with `steering`, these processors instead of the generator's."""
    from smoothie_cli.generation.sampling import SamplingConfig

    saved = (generator.sampling, generator.logits_processors, generator.pipeline)
    generator.sampling, generator.pipeline = SamplingConfig(), None
    if steering is not None:
        generator.logits_processors = steering
    try:
        yield
    finally:
        generator.sampling, generator.logits_processors, generator.pipeline = saved


def base_answers(ctx: EvalContext, examples: Sequence[Example], progress: Progress) -> list[str]:
    """The unsteered model's greedy answers, generated once per context and prompt set."""
    generator = ctx.generator
    store = ctx.options.setdefault("base_answers", {})
    key = (getattr(generator, "max_new_tokens", None), tuple((e.system, e.prompt) for e in examples))
    if key not in store:
        with _greedy(generator, steering=[]):
            store[key] = generator.generate(examples, progress)
    return list(store[key])


def steered_answers(ctx: EvalContext, examples: Sequence[Example], progress: Progress) -> list[str]:
    """This setting's greedy answers (shared with other tasks when the run is greedy anyway)."""
    generator = ctx.generator
    if generator.sampling.greedy and int(ctx.options.get("samples") or 1) == 1:  # type: ignore[attr-defined]
        return [row[0] for row in generate_samples(ctx, examples, progress)]
    with _greedy(generator):
        return generator.generate(examples, progress)


class FidelityTask(Task):
    name = "fidelity"
    metrics = ("identical", "bertscore_base")
    default_datasets = ("korean", "korean-open", "mtbench")
    description = "greedy answers against the base model's: share identical, mean BERTScore F1 to them"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        if not all(hasattr(ctx.generator, a) for a in ("sampling", "logits_processors", "pipeline")):
            raise SmoothieError("fidelity compares plain model generation with and without steering; "
                                "it does not apply to cautious decoding")  # fmt: skip
        examples = dataset.examples
        base = base_answers(ctx, examples, progress)
        answers = steered_answers(ctx, examples, progress)
        scorer = ctx.options.get("bertscore_scorer")
        if scorer is None:
            device = str(getattr(ctx.model, "device", "cpu")) if ctx.model is not None else "cpu"
            scorer = make_scorer(ctx.options.get("bertscore_model"), device, progress)
            ctx.options["bertscore_scorer"] = scorer
        progress("bertscore against the base answers", 0, len(answers))
        _, _, f1 = scorer.score([a or " " for a in answers], [b or " " for b in base])
        progress("bertscore against the base answers", len(answers), len(answers))
        samples = [
            SampleResult(
                e.id, e.prompt, a, {"identical": float(a == b), "bertscore_base": float(f)}, reference=b
            )
            for e, a, b, f in zip(examples, answers, base, f1)
        ]
        scores = {
            "identical": proportion([s.scores["identical"] for s in samples]),
            "bertscore_base": mean([s.scores["bertscore_base"] for s in samples]),
        }
        return TaskResult(self.name, dataset.name, scores, samples)
