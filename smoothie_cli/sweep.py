"""Sweep smoothing settings: one model load, run-time scales per setting, resumable, tables and plots."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.runner import PlanItem, write_samples
from smoothie_cli.evaluation.session import Session
from smoothie_cli.jsonfile import read_jsonl, read_yaml, validate
from smoothie_cli.models.atomic import write_text_atomic
from smoothie_cli.progress import Progress, no_progress

RUNS_FILE = "runs.jsonl"


@dataclass(frozen=True)
class Setting:
    min_scale: float
    smoothness: float


@dataclass
class SweepRun:
    """One setting's scores: keys `metric:dataset`, with 95% intervals and counts."""

    setting: Setting
    scores: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    resumed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_scale": self.setting.min_scale,
            "smoothness": self.setting.smoothness,
            **self.scores,
            "intervals": self.intervals,
            "n": self.counts,
            "resumed": self.resumed,
        }


def grid(min_scales: Sequence[float], smoothnesses: Sequence[float]) -> list[Setting]:
    return [Setting(float(m), float(s)) for s in smoothnesses for m in min_scales]


def run_key(identity: dict[str, Any], setting: Setting, item: PlanItem) -> str:
    """What makes a finished result reusable: model, setting, task, dataset, limit, seed, generation."""
    payload = {**identity, "min_scale": setting.min_scale, "smoothness": setting.smoothness}
    payload |= {"task": item.task, "dataset": item.dataset}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


class _Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    min_scale: list[float] | None = None
    smoothness: list[float] | None = None
    tasks: list[str] | None = None
    datasets: list[str] | None = None
    limit: PositiveInt | dict[str, PositiveInt] | None = None
    max_new_tokens: PositiveInt | None = None
    mode: Literal["scale", "bias", "lower"] | None = None
    batch_size: PositiveInt | None = None
    mc_style: Literal["letters", "text", "generate"] | None = None
    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    samples: PositiveInt | None = None

    @field_validator("min_scale", "smoothness", "tasks", "datasets", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, (int, float, str)) and not isinstance(value, bool) else value


def read_grid(path: Path) -> dict[str, Any]:
    """A sweep grid YAML (configs/sweep-*.yaml): the keys it sets, checked."""
    data = read_yaml(path, "grid")
    if data is None:
        return {}
    grid = validate(_Grid, data, f"grid {path}")
    return grid.model_dump(exclude_none=True)


class RunRecord(BaseModel):
    """One line of runs.jsonl: a finished (setting, task, dataset) and its scores."""

    model_config = ConfigDict(extra="forbid")
    key: str
    min_scale: float
    smoothness: float
    task: str
    dataset: str
    n: Annotated[int, Field(ge=0)]
    scores: dict[str, float | None]
    intervals: dict[str, Annotated[list[float | None], Field(min_length=2, max_length=2)]]
    seconds: float

    @model_validator(mode="after")
    def _every_score_has_an_interval(self) -> RunRecord:
        if set(self.scores) - set(self.intervals):
            raise ValueError("a score has no interval")
        return self


def load_runs(path: Path) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """Finished results in runs.jsonl by key, and the numbers of the lines skipped as damaged.

    A kill mid-write leaves a cut last line; its result is simply redone. The file is rewritten without
    the damaged lines, so the next result is appended on a line of its own.
    """
    if not path.is_file():
        return {}, []

    def check(value: Any, where: str) -> dict[str, Any]:
        validate(RunRecord, value, where)
        return value

    lines = read_jsonl(path, "sweep log", check, tolerant=True)
    if lines.skipped:
        write_text_atomic(path, "".join(json.dumps(record) + "\n" for record in lines.records))
    return {record["key"]: record for record in lines.records}, lines.skipped


def _describes(record: dict[str, Any]) -> tuple[float, float, str, str]:
    return record["min_scale"], record["smoothness"], record["task"], record["dataset"]


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run_sweep(
    session: Session,
    settings: Sequence[Setting],
    items: Sequence[PlanItem],
    directory: Path,
    *,
    identity: dict[str, Any],
    scales: str = "auto",
    mode: str = "scale",
    limit: int | dict[str, int] | None = None,
    seed: int = 0,
    on_run: Callable[[SweepRun], None] = lambda run: None,
    warn: Callable[[str], None] = lambda message: None,
    progress: Progress = no_progress,
) -> list[SweepRun]:
    """Evaluate every setting on every plan item, skipping results already in `directory/runs.jsonl`."""
    from smoothie_cli.data.datasets import load_dataset
    from smoothie_cli.evaluation.tasks import get_task

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SmoothieError(
            f"cannot write to {directory}: {error.strerror or error}; choose another -o"
        ) from None
    runs_path = directory / RUNS_FILE
    finished, skipped = load_runs(runs_path)
    if skipped:
        numbers = ", ".join(str(n) for n in skipped)
        plural = len(skipped) > 1
        warn(
            f"skipped {len(skipped)} damaged line{'s' if plural else ''} of {runs_path} (line {numbers}; "
            f"an interrupted write?): {'those results are' if plural else 'that result is'} redone"
        )
    datasets: dict[str, Any] = {}
    runs = []
    for number, setting in enumerate(settings, start=1):
        run = SweepRun(setting)
        applied = False
        for item in items:
            key = run_key(identity, setting, item)
            record = finished.get(key)
            if record is not None and _describes(record) != (setting.min_scale, setting.smoothness, item.task,
                                                             item.dataset):  # fmt: skip
                record = None  # a damaged line whose key survived: redo it rather than trust the rest
            if record is None:
                if not applied:
                    session.apply_setting(scales, setting.min_scale, setting.smoothness, mode)
                    applied = True
                if item.dataset not in datasets:
                    cap = limit.get(item.dataset) if isinstance(limit, dict) else limit
                    datasets[item.dataset] = load_dataset(
                        item.dataset, limit=cap, seed=seed, progress=progress
                    )
                progress(f"setting {number}/{len(settings)}: {item.task} on {item.dataset}", 0, None)
                result = get_task(item.task).run(session.context, datasets[item.dataset], progress)
                record = {
                    "key": key,
                    "min_scale": setting.min_scale,
                    "smoothness": setting.smoothness,
                    "task": item.task,
                    "dataset": item.dataset,
                    "n": result.n,
                    "scores": {m: s.value for m, s in result.scores.items()},
                    "intervals": {m: [s.low, s.high] for m, s in result.scores.items()},
                    "seconds": round(result.seconds, 2),
                }
                label = f"{mode}_min{setting.min_scale:g}_smooth{setting.smoothness:g}"
                write_samples(directory / "samples" / label, result)  # the answers behind the numbers
                _append(runs_path, record)
                run.resumed = False
            for metric, value in record["scores"].items():
                name = f"{metric}:{record['dataset']}"
                run.scores[name] = value
                run.intervals[name] = record["intervals"][metric]
                run.counts[name] = record["n"]
        runs.append(run)
        on_run(run)
    return runs


def write_results(directory: Path, runs: Sequence[SweepRun]) -> list[Path]:
    """results.csv, results.json, and one PNG per score against each swept parameter."""
    import csv

    from smoothie_cli.plots import sweep_plot

    metrics = sorted({m for r in runs for m in r.scores})
    rows = [
        [r.setting.min_scale, r.setting.smoothness, *[r.scores.get(m, "") for m in metrics]] for r in runs
    ]
    csv_path = directory / "results.csv"
    tmp = directory / ".results.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["min_scale", "smoothness", *metrics])
        writer.writerows(rows)
    os.replace(tmp, csv_path)
    json_path = directory / "results.json"
    write_text_atomic(json_path, json.dumps({"runs": [r.as_dict() for r in runs]}, indent=2) + "\n")
    written = [csv_path, json_path]
    for parameter in ("min_scale", "smoothness"):
        values = {getattr(r.setting, parameter) for r in runs}
        if len(values) > 1:
            written.append(sweep_plot(runs, parameter, metrics, directory / f"sweep_{parameter}.png"))
    return written


# ---- the gentlest setting that meets a target ----------------------------------------------------------

_TARGET = re.compile(r"^\s*([\w@.-]+):(\S+?)\s*(>=|<=)\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Target:
    """`metric:dataset>=value` (or `<=`): what a setting must reach, e.g. no_chinese:chinese-elicit>=0.99."""

    metric: str
    dataset: str
    op: str
    value: float

    @property
    def key(self) -> str:
        return f"{self.metric}:{self.dataset}"

    def met(self, scores: dict[str, float]) -> bool:
        score = scores.get(self.key)
        if score is None or score != score:  # missing or NaN
            return False
        return score >= self.value if self.op == ">=" else score <= self.value

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value:g}"


def parse_target(text: str) -> Target:
    found = _TARGET.match(text)
    if found is None:
        raise SmoothieError(
            f"target '{text}' is not METRIC:DATASET>=VALUE (e.g. no_chinese:chinese-elicit>=0.99)"
        )
    metric, dataset, op, value = found.groups()
    try:
        return Target(metric, dataset, op, float(value))
    except ValueError:
        raise SmoothieError(f"target '{text}': '{value}' is not a number") from None


@dataclass
class Search:
    """What the search evaluated (min_scale → scores, in order) and the mildest min_scale that met the target
    (None: not even the strongest setting did)."""

    target: Target
    evaluated: list[tuple[float, dict[str, float]]]
    found: float | None


def search_min_scale(
    evaluate: Callable[[float], dict[str, float]],
    target: Target,
    *,
    low: float = 0.1,
    high: float = 1.0,
    steps: int = 5,
) -> Search:
    """The largest min_scale in [low, high] whose scores meet `target`, by bisection.

    Smoothing grows stronger as min_scale falls, so the target is taken to be met below some threshold:
    `high` (the mildest) is tried first, then `low` (the strongest), then `steps` bisections of the bracket
    between a setting that fails and one that meets it; the answer is within (high − low)/2^steps of the
    threshold, on the side that meets it. `evaluate` is called once per distinct min_scale (the sweep's
    runs.jsonl makes each call resumable).
    """
    if not 0.0 <= low < high <= 1.0:
        raise SmoothieError(f"the search bracket [{low}, {high}] must satisfy 0 ≤ low < high ≤ 1")
    evaluated: list[tuple[float, dict[str, float]]] = []

    def meets(min_scale: float) -> bool:
        scores = evaluate(round(min_scale, 4))
        evaluated.append((round(min_scale, 4), scores))
        return target.met(scores)

    if meets(high):
        return Search(target, evaluated, round(high, 4))
    if not meets(low):
        return Search(target, evaluated, None)
    good, bad = low, high
    for _ in range(steps):
        middle = (good + bad) / 2
        if meets(middle):
            good = middle
        else:
            bad = middle
    return Search(target, evaluated, round(good, 4))
