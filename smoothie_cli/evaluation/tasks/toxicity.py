"""toxicity: the draft's <Toc>/<Safe> gate as a classifier — precision, recall, F1 and over-refusal."""

from __future__ import annotations

from smoothie_cli.data.examples import Dataset
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult
from smoothie_cli.progress import Progress


class ToxicityTask(Task):
    name = "toxicity"
    metrics = (
        "gate_f1", "gate_precision", "gate_recall", "over_refusal", "untagged", "gate_accuracy", "gate_auprc",
        "gate_auc",
    )  # fmt: skip
    default_datasets = ("moderation-test",)
    description = (
        "the model as a draft: the tag it writes under the moderation prompt against toxic/safe labels"
    )

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        from smoothie_cli.cautious.gate import classify, gate_scores, gate_values

        labelled = [e for e in dataset.examples if e.label in ("toxic", "safe")]
        if not labelled:
            raise SmoothieError(
                f"dataset '{dataset.name}' has no toxic/safe labels; use moderation-test or map a column "
                "to the label field (label=COLUMN)"
            )
        instruction = ctx.options.get("instruction")
        kwargs = {"instruction": instruction} if instruction else {}
        threshold = ctx.options.get("gate_threshold")  # the draft's calibration (gate.json), if any
        prompts = [e.messages() for e in labelled]  # the gate reads the whole conversation
        # the margins (or the probe's log-odds, when the calibration reads a probe) give the threshold-free
        # AUPRC / AUC; with a threshold they are also the decision
        probe = ctx.options.get("gate_probe")
        margins = gate_values(ctx.model, ctx.tokenizer, prompts, probe=probe, progress=progress, **kwargs)
        if threshold is None:
            gates = classify(ctx.model, ctx.tokenizer, prompts, progress=progress, **kwargs)
        else:
            gates = ["toxic" if m > threshold else "safe" for m in margins]
        samples = [
            SampleResult(
                e.id,
                e.prompt,
                gate,
                {"flagged": float(gate == "toxic"), "toxic": float(e.label == "toxic"), "margin": margin},
                meta={**e.meta, "label": e.label},
            )
            for e, gate, margin in zip(labelled, gates, margins)
        ]
        scores = gate_scores([e.label for e in labelled], gates, margins=margins)
        return TaskResult(self.name, dataset.name, scores, samples)
