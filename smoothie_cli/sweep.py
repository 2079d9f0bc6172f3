"""Sweep smoothing settings: one model load, run-time scales per setting, resumable, tables and plots.

`SweepSettings.merge` turns a grid file and explicit options into one typed settings object (explicit options
win over the grid, the grid over the defaults); `sweep` runs it: the grid, or the search for the mildest
min_scale that meets a target, then results files, plots and (if asked) checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from smoothie_cli.atomic import write_text_atomic
from smoothie_cli.errors import BadValue, CannotWrite, Conflict
from smoothie_cli.evaluation.runner import PlanItem, write_samples
from smoothie_cli.evaluation.session import Session
from smoothie_cli.jsonfile import read_jsonl, read_yaml, validate
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
        raise CannotWrite(
            f"cannot write to {directory}: {error.strerror or error}; choose another output directory",
            setting="output",
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
        raise BadValue(
            f"target '{text}' is not METRIC:DATASET>=VALUE (e.g. no_chinese:chinese-elicit>=0.99)",
            setting="target",
        )
    metric, dataset, op, value = found.groups()
    try:
        return Target(metric, dataset, op, float(value))
    except ValueError:
        raise BadValue(f"target '{text}': '{value}' is not a number", setting="target") from None


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
        raise BadValue(
            f"the search bracket [{low}, {high}] must satisfy 0 ≤ low < high ≤ 1", setting="min_scale"
        )
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


# ---- one sweep, from settings to results -------------------------------------------------------------------

SAVE_CHOICES = ("none", "best", "all")
SEARCH_BRACKET = (0.1, 1.0)


@dataclass(frozen=True)
class SweepSettings:
    """Everything one sweep needs. Build it with `merge` (explicit options over a grid file over these)."""

    model: str | None = None
    min_scale: tuple[float, ...] = (0.5,)
    smoothness: tuple[float, ...] = (10.0,)
    tasks: tuple[str, ...] = ("no-chinese", "mc")
    datasets: tuple[str, ...] | None = None
    limit: int | dict[str, int] | None = None
    max_new_tokens: int = 48
    batch_size: int = 32
    scales: str = "auto"
    mode: str = "scale"
    save: str = "none"
    target: Target | None = None
    search_steps: int = 5
    mc_style: str = "letters"
    temperature: float = 0.0
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    device: str = "auto"
    config: Path | None = None
    output: Path = Path("runs/sweep")
    endpoint: str | None = None  # answers from this OpenAI-compatible server; settings travel per request
    endpoint_key: str | None = None
    endpoint_processor: bool = False  # the server runs smoothie's vLLM processor (else: bias as logit_bias)
    endpoint_timeout: float | None = None  # seconds per request, queue included (None: EndpointGenerator's)

    @classmethod
    def merge(cls, options: Mapping[str, Any], grid: Mapping[str, Any] | None = None) -> SweepSettings:
        """Explicit `options` (None: not given) win over `grid` (a grid file's keys), which wins over the
        defaults. A `target` searches min_scale in the bracket LOW,HIGH of an explicit min_scale, else in
        (0.1, 1.0): a grid's list of values is not a bracket."""
        grid = grid or {}
        unknown = set(options) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"not sweep settings: {sorted(unknown)}")
        chosen: dict[str, Any] = {}
        for name in (f.name for f in fields(cls)):
            value = options.get(name)
            if value is None:
                value = grid.get(name)
            if value is not None:
                chosen[name] = tuple(value) if isinstance(value, list) else value
        if chosen.get("endpoint") is not None and "tasks" not in chosen:
            from smoothie_cli.evaluation.endpoint import ENDPOINT_TASKS

            chosen["tasks"] = tuple(t for t in cls.tasks if t in ENDPOINT_TASKS)
        if isinstance(chosen.get("target"), str):
            chosen["target"] = parse_target(chosen["target"])
        if chosen.get("target") is not None:
            given = options.get("min_scale")
            chosen["min_scale"] = tuple(sorted(given)) if given else SEARCH_BRACKET
        settings = cls(**chosen)
        settings.check()
        return settings

    def check(self) -> None:
        from smoothie_cli.smoothing.scales import check_parameters

        if self.save not in SAVE_CHOICES:
            raise BadValue(f"'{self.save}' is not one of {', '.join(SAVE_CHOICES)}", setting="save")
        if self.samples > 1 and self.temperature == 0:
            raise Conflict("more than one sample per prompt needs sampling: give a value above 0",
                           setting="temperature")  # fmt: skip
        if self.target is not None and len(self.smoothness) != 1:
            raise Conflict(
                "a min_scale search runs at one smoothness; give a single value", setting="smoothness"
            )
        if self.target is not None and len(self.min_scale) != 2:
            raise BadValue(
                "a min_scale search takes the bracket LOW,HIGH (e.g. 0.1,1.0)", setting="min_scale"
            )
        for setting in grid(self.min_scale, self.smoothness):
            check_parameters(setting.min_scale, setting.smoothness)
        if self.endpoint is not None:
            self._check_endpoint()

    def _check_endpoint(self) -> None:
        from smoothie_cli.evaluation.endpoint import check_endpoint_tasks

        check_endpoint_tasks(self.tasks)
        if self.save != "none":
            raise Conflict(
                "checkpoints are written from a local model; a sweep through a server cannot save them",
                setting="save",
            )
        from smoothie_cli.smoothing.runtime import check_server_mode

        check_server_mode(self.mode, self.endpoint_processor)

    def identity(self, model: str, config: Any) -> dict[str, Any]:
        """What makes a finished result in runs.jsonl reusable by a later sweep."""
        identity = {
            "model": model,
            "limit": self.limit,
            "seed": self.seed,
            "mode": self.mode,
            "max_new_tokens": self.max_new_tokens,
            "scales": self.scales,
            "targets": [list(t.range) for t in config.unicode_targets],
        }
        # options that change results join the identity only when set, so earlier runs.jsonl files stay valid
        if self.mc_style != "letters":
            identity["mc_style"] = self.mc_style
        if self.endpoint is not None:  # `model` names the server too: "NAME at URL"
            identity["server_smoothing"] = "processor" if self.endpoint_processor else "logit_bias"
            if self.endpoint_processor:
                identity["scales"] = "server"
        if self.temperature != 0:
            identity["sampling"] = {
                "temperature": self.temperature,
                "top_p": self.top_p,
                "samples": self.samples,
            }
        return identity


@dataclass
class SweepReport:
    """What a sweep did: its runs in order, the search (with a target), the files written."""

    model: str
    mode: str
    smoothness: float
    runs: list[SweepRun]
    written: list[Path]
    seconds: float
    search: Search | None = None

    def as_dict(self) -> dict[str, Any]:
        search = {}
        if self.search is not None:
            found = self.search.found
            key = self.search.target.key
            search = {
                "target": str(self.search.target),
                "found": None if found is None else {"min_scale": found, "smoothness": self.smoothness},
                "evaluated": [{"min_scale": m, key: s.get(key)} for m, s in self.search.evaluated],
            }
        return {
            "model": self.model,
            **search,
            "runs": [r.as_dict() for r in self.runs],
            "outputs": [str(p) for p in self.written],
            "seconds": self.seconds,
        }


def sweep(
    settings: SweepSettings,
    *,
    on_run: Callable[[SweepRun], None] = lambda run: None,
    warn: Callable[[str], None] = lambda message: None,
    progress: Progress = no_progress,
) -> SweepReport:
    """Load the model once, evaluate the grid (or search for the target), write results and checkpoints."""
    from smoothie_cli.config import load_config
    from smoothie_cli.evaluation.runner import plan
    from smoothie_cli.generation.sampling import SamplingConfig

    start = time.perf_counter()
    config = load_config(settings.config)
    items = plan(list(settings.tasks), None if settings.datasets is None else list(settings.datasets))
    sampling = SamplingConfig(settings.temperature, settings.top_p, seed=settings.seed)
    session = _open(settings, config, sampling, progress)
    session.context.options.update({"mc_style": settings.mc_style, "samples": settings.samples})
    model = session.source.spec if settings.endpoint is not None else settings.model or config.model.name
    identity = settings.identity(model, config)

    def sweep_over(chosen: Sequence[Setting], plan_items: Sequence[PlanItem]) -> list[SweepRun]:
        return run_sweep(session, chosen, plan_items, settings.output, identity=identity,
                         scales=settings.scales, mode=settings.mode, limit=settings.limit, seed=settings.seed,
                         on_run=on_run, warn=warn, progress=progress)  # fmt: skip

    search = None
    if settings.target is None:
        runs = sweep_over(grid(settings.min_scale, settings.smoothness), items)
    else:
        search, runs = _search(settings, items, sweep_over)
    written = write_results(settings.output, runs)
    if settings.save != "none":
        written += save_checkpoints(session, runs, settings.save, settings.output, progress)
    return SweepReport(session.source.spec, settings.mode, settings.smoothness[0], runs, written,
                       round(time.perf_counter() - start, 2), search)  # fmt: skip


def _open(settings: SweepSettings, config: Any, sampling: Any, progress: Progress) -> Session:
    """The model loaded here, or a server that answers (`endpoint`): each setting then travels with its
    requests, as vllm_xargs for smoothie's processor in the server or as a logit_bias."""
    from smoothie_cli.evaluation.session import open_session

    if settings.endpoint is not None:
        from smoothie_cli.evaluation.endpoint import endpoint_session

        return endpoint_session(settings.endpoint, settings.model, settings.endpoint_key, config, sampling,
                                settings.max_new_tokens, settings.batch_size,
                                processor=settings.endpoint_processor,
                                timeout=settings.endpoint_timeout)  # fmt: skip
    return open_session(settings.model or config.model.name, config, device=settings.device,
                        max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size,
                        sampling=sampling, progress=progress)  # fmt: skip


def _search(
    settings: SweepSettings, items: list[PlanItem], sweep_over: Callable[..., list[SweepRun]]
) -> tuple[Search, list[SweepRun]]:
    """Bisect min_scale on the target's own task and dataset, then run every planned item at the setting
    found. Returns the search and the runs to report (search points, then the found setting in full)."""
    from smoothie_cli.evaluation.tasks import TASKS

    goal, smoothness = settings.target, settings.smoothness[0]
    assert goal is not None
    extra = {"mc": ("answered",)}  # reported by the generate style only
    owners = [t.name for t in TASKS.values() if goal.metric in (*t.metrics, *extra.get(t.name, ()))]
    if not owners:
        raise BadValue(f"no task reports the metric '{goal.metric}'; see the list of tasks and their metrics",
                       setting="target")  # fmt: skip
    probe = PlanItem(owners[0], goal.dataset)
    runs: list[SweepRun] = []

    def evaluate(min_scale: float) -> dict[str, float]:
        run = sweep_over([Setting(min_scale, smoothness)], [probe])[0]
        runs.append(run)
        return run.scores

    low, high = settings.min_scale[0], settings.min_scale[-1]
    search = search_min_scale(evaluate, goal, low=low, high=high, steps=settings.search_steps)
    chosen = search.found if search.found is not None else low
    final = sweep_over([Setting(chosen, smoothness)], list(dict.fromkeys([probe, *items])))[0]
    return search, [*runs, final]


def save_checkpoints(
    session: Session, runs: list[SweepRun], save: str, output: Path, progress: Progress
) -> list[Path]:
    """Checkpoints for all settings, or for the best one (highest mean no_chinese, then the gentler scale)."""
    from smoothie_cli.models import model_directory
    from smoothie_cli.smoothing.checkpoint import smooth_checkpoint
    from smoothie_cli.smoothing.scales import scales_from_analysis

    chosen = runs
    if save == "best":

        def merit(run: SweepRun) -> tuple[float, float]:
            values = [v for k, v in run.scores.items() if k.startswith("no_chinese")]
            return (sum(values) / len(values) if values else 0.0, run.setting.min_scale)

        chosen = [max(runs, key=merit)]
    written = []
    for run in chosen:
        token_scales = scales_from_analysis(
            session.analysis("auto"), run.setting.min_scale, run.setting.smoothness
        )
        target = output / "models" / f"min{run.setting.min_scale}_smooth{run.setting.smoothness}"
        result = smooth_checkpoint(
            model_directory(session.source), target, token_scales, force=True, progress=progress
        )
        written.append(result.output)
    return written
