"""mc: multiple-choice accuracy by option log-likelihood, as lm-evaluation-harness computes it.

Two styles: `letters` (MMLU in the harness: the question lists the options A–D and the continuations are
" A" … " D") and `text` (the continuation is the option's own text; acc_norm divides by its length in bytes).
"""

from __future__ import annotations

from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.examples import Dataset, Example
from smoothie_cli.evaluation.scoring import LogitsCache, loglikelihoods
from smoothie_cli.evaluation.stats import proportion
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult
from smoothie_cli.progress import Progress

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


class MultipleChoiceTask(Task):
    name = "mc"
    metrics = ("acc", "acc_norm")
    default_datasets = ("mmlu",)
    description = "pick the option with the highest log-likelihood (acc; acc_norm divides by option length)"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        style = ctx.options.get("mc_style", "letters")
        if style not in ("letters", "text"):
            raise SmoothieError(f"unknown multiple-choice style '{style}'; use letters or text")
        examples = [e for e in dataset.examples if e.choices and e.answer is not None]
        if not examples:
            raise SmoothieError(f"dataset '{dataset.name}' has no multiple-choice items (choices + answer)")
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
