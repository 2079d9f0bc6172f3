"""Run tasks on datasets with one loaded model, and write what came out."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smoothie_cli.errors import BadValue, CannotWrite, Conflict
from smoothie_cli.evaluation.tasks import EvalContext, TaskResult, get_task
from smoothie_cli.jsonable import finite
from smoothie_cli.progress import Progress, no_progress


@dataclass(frozen=True)
class PlanItem:
    task: str
    dataset: str


def plan(tasks: Sequence[str], datasets: Sequence[str] | None) -> list[PlanItem]:
    """Each task on its own default datasets, or on the given ones. With several tasks, a given dataset goes
    to the tasks that list it among their defaults (mmlu → mc, chinese-elicit → no-chinese), and one that no
    task lists (a local file, a hub id) goes to every task."""
    chosen = [get_task(name) for name in dict.fromkeys(tasks)]
    if not datasets:
        return [PlanItem(t.name, d) for t in chosen for d in t.default_datasets]
    if len(chosen) == 1:
        return [PlanItem(chosen[0].name, d) for d in dict.fromkeys(datasets)]
    known = {d for t in chosen for d in t.default_datasets}
    items = [
        PlanItem(t.name, d)
        for t in chosen
        for d in dict.fromkeys(datasets)
        if d in t.default_datasets or d not in known
    ]
    if not items:
        raise Conflict(
            f"none of {', '.join(datasets)} fit the tasks {', '.join(t.name for t in chosen)}; give "
            "datasets those tasks read, or local files",
            setting="datasets",
        )
    return items


def run_plan(
    ctx: EvalContext,
    items: Sequence[PlanItem],
    *,
    limit: int | None = None,
    seed: int = 0,
    columns: dict[str, str] | None = None,
    progress: Progress = no_progress,
) -> list[TaskResult]:
    from smoothie_cli.data.datasets import load_dataset

    cache: dict[str, Any] = {}
    results = []
    for item in items:
        if item.dataset not in cache:
            cache[item.dataset] = load_dataset(
                item.dataset, limit=limit, seed=seed, columns=columns, progress=progress
            )
        results.append(get_task(item.task).run(ctx, cache[item.dataset], progress))
    return results


def summarise(results: Sequence[TaskResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """{task: {dataset: {metric: value, metric_ci95: [lo, hi], n, seconds}}}"""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for result in results:
        entry: dict[str, Any] = {}
        for metric, score in result.scores.items():
            entry.update(score.as_dict(metric))
        entry["n"] = result.n
        entry["seconds"] = round(result.seconds, 2)
        out.setdefault(result.task, {})[result.dataset] = entry
    return out


def flat_scores(results: Sequence[TaskResult]) -> dict[str, float]:
    """{"metric:dataset": value}, the keys sweeps and tables use."""
    return {f"{m}:{r.dataset}": s.value for r in results for m, s in r.scores.items()}


def write_samples(directory: Path, result: TaskResult) -> Path:
    """`directory/TASK.DATASET.jsonl`: one line per sample (id, prompt, answer, reference, scores, meta)."""
    from smoothie_cli.atomic import write_text_atomic

    lines = [
        json.dumps(
            {
                "id": s.id,
                "prompt": s.prompt,
                "answer": s.answer,
                "reference": s.reference,
                "scores": s.scores,
                **({"meta": finite(s.meta)} if s.meta else {}),
            },
            ensure_ascii=False,
            default=str,
        )
        for s in result.samples
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.task}.{result.dataset.replace('/', '_')}.jsonl"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def write_run(directory: Path, results: Sequence[TaskResult], summary: dict[str, Any]) -> list[Path]:
    """Per-sample JSONL (prompt, answer, scores) per task and dataset, plus summary.json."""
    from smoothie_cli.atomic import write_text_atomic

    written = [write_samples(directory, result) for result in results]
    path = directory / "summary.json"
    write_text_atomic(path, json.dumps(finite(summary), indent=2, ensure_ascii=False) + "\n")
    written.append(path)
    return written


# ---- one evaluation, from settings to a report -------------------------------------------------------------


@dataclass(frozen=True)
class EvalSettings:
    """Everything `smoothie eval` needs: the model and how it answers, the tasks, and where results go."""

    model: str | None = None
    tasks: tuple[str, ...] = ("no-chinese",)
    datasets: tuple[str, ...] | None = None
    limit: int | None = None
    max_new_tokens: int | None = None  # None: each task's own default (128; humaneval 512)
    batch_size: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    samples: int = 1
    scales: str | None = None
    min_scale: float = 0.5
    smoothness: float = 10.0
    mode: str = "scale"
    mc_style: str = "letters"
    bertscore_model: str | None = None
    draft: str | None = None
    draft_quant: str = "auto"
    columns: dict[str, str] | None = field(default=None, hash=False)
    config: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    output: Path | None = None
    endpoint: str | None = None  # answers from this OpenAI-compatible server instead of a local model
    endpoint_key: str | None = None
    endpoint_processor: bool = False  # the server runs smoothie's vLLM processor (else: bias as logit_bias)
    endpoint_timeout: float | None = None  # seconds per request, queue included (None: EndpointGenerator's)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise BadValue(f"{self.limit} examples is too few; give at least 1", setting="limit")
        for name in ("max_new_tokens", "batch_size", "samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadValue(f"{value} is too few; give at least 1", setting=name)
        if self.samples > 1 and self.temperature == 0:
            raise Conflict("more than one sample per prompt needs sampling: give a value above 0",
                           setting="temperature")  # fmt: skip
        if self.endpoint is not None:
            self._check_endpoint()

    def _check_endpoint(self) -> None:
        if self.draft is not None:
            raise Conflict("the draft gates and drafts locally; an endpoint answers by itself: leave it out",
                           setting="draft")  # fmt: skip
        from smoothie_cli.smoothing.runtime import check_server_mode

        if self.scales is not None:
            check_server_mode(self.mode, self.endpoint_processor)


@dataclass
class EvalReport:
    model: str
    setting: dict[str, Any]
    results: list[TaskResult]
    seconds: float
    outputs: list[Path] | None = None

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "model": self.model,
            "setting": self.setting,
            "results": summarise(self.results),
            "seconds": self.seconds,
        }
        if self.outputs is not None:
            summary["outputs"] = [str(p) for p in self.outputs]
        return summary


def evaluate(settings: EvalSettings, progress: Progress = no_progress) -> EvalReport:
    """Load the model once, steer it (run-time scales, a cautious draft, sampling), run every planned task,
    and write the samples and summary when an output directory is given."""
    from smoothie_cli.config import load_config
    from smoothie_cli.evaluation.session import open_session
    from smoothie_cli.generation.sampling import SamplingConfig

    start = time.perf_counter()
    sampling = SamplingConfig(settings.temperature, settings.top_p, seed=settings.seed)
    tokens = settings.max_new_tokens or 128
    items = plan(list(settings.tasks), None if settings.datasets is None else list(settings.datasets))
    config = load_config(settings.config)
    if settings.endpoint is not None:
        from smoothie_cli.evaluation.endpoint import check_endpoint_tasks, endpoint_session

        check_endpoint_tasks([i.task for i in items])
        session = endpoint_session(settings.endpoint, settings.model, settings.endpoint_key, config, sampling,
                                   tokens, settings.batch_size,
                                   processor=settings.endpoint_processor,
                                   timeout=settings.endpoint_timeout)  # fmt: skip
    else:
        session = open_session(settings.model or config.model.name, config, device=settings.device,
                               dtype=settings.dtype, max_new_tokens=tokens, batch_size=settings.batch_size,
                               sampling=sampling, progress=progress)  # fmt: skip
    # the same setting, applied here or carried by every request to the endpoint
    setting = session.apply_setting(settings.scales, settings.min_scale, settings.smoothness, settings.mode)
    if settings.endpoint is not None:
        setting |= {
            "label": f"{settings.endpoint}, smoothing: {setting['label']}",
            "endpoint": settings.endpoint,
        }
    if settings.draft is not None:  # after the scales: the draft drafts through the same processors
        setting |= session.use_draft(settings.draft, settings.draft_quant, tokens, progress)
        setting["label"] += f", cautious decoding with {setting['draft']} ({setting['draft_quant']})"
    session.context.options.update(
        {"mc_style": settings.mc_style, "bertscore_model": settings.bertscore_model,
         "max_new_tokens": settings.max_new_tokens, "samples": settings.samples}
    )  # fmt: skip
    if not sampling.greedy:
        keys = ("temperature", "top_p", "samples", "seed")
        setting["sampling"] = {key: getattr(settings, key) for key in keys}
    results = run_plan(session.context, items, limit=settings.limit, seed=settings.seed,
                       columns=settings.columns, progress=progress)  # fmt: skip
    report = EvalReport(session.source.spec, setting, results, round(time.perf_counter() - start, 2))
    if settings.output is not None:
        try:
            report.outputs = write_run(Path(settings.output), results, report.as_dict())
        except OSError as error:
            raise CannotWrite(f"cannot write to {settings.output}: {error.strerror or error}; choose another "
                              "output directory", setting="output") from None  # fmt: skip
    return report
