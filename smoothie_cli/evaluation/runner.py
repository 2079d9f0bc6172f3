"""Run tasks on datasets with one loaded model, and write what came out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoothie_cli.errors import SmoothieError
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
        raise SmoothieError("none of the given --dataset values fit the given --task values")
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
    from smoothie_cli.models.atomic import write_text_atomic

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
    from smoothie_cli.models.atomic import write_text_atomic

    written = [write_samples(directory, result) for result in results]
    path = directory / "summary.json"
    write_text_atomic(path, json.dumps(finite(summary), indent=2, ensure_ascii=False) + "\n")
    written.append(path)
    return written
