"""Calibration statistics and the calibration file: a threshold on a gate score, chosen on held-out prompts
so over-refusal stays under a target with confidence, and the scores a gate is judged by (P/R/F1,
over-refusal, AUPRC, ROC AUC with bootstrap intervals).

Nothing here reads a model: scores come in as numbers (reading.py and probe.py compute them).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.layout import CALIBRATION_FILE
from smoothie_cli.cautious.prompts import Gate
from smoothie_cli.errors import BadValue, SmoothieError
from smoothie_cli.stats import Score, proportion

# the over-refusal a calibrated gate should stay under. The threshold is chosen so that the *upper* one-sided
# confidence bound (Clopper-Pearson) of over-refusal on the held-out calibration prompts stays under it, not
# the point estimate: a point estimate at the edge of a few hundred benign prompts is optimistic (2% there
# gave 4% on the test split, 5% gave 8%: README)
DEFAULT_MAX_OVER_REFUSAL = 0.03
DEFAULT_CONFIDENCE = 0.95
MIN_FAMILY = 20  # benign prompts a family needs for its own over-refusal to constrain the threshold


@dataclass
class GateCalibration:
    """A decision threshold on the tag margin, chosen on held-out prompts, with what it gave there."""

    threshold: float
    max_over_refusal: float
    validation: dict[str, float]
    # what the threshold applies to: "margin" (the first tag token's log-odds) or "probe" (the log-odds of
    # the linear probe in gate-probe.safetensors, probe.py)
    reading: str = "margin"
    # for an int8 reading (gate-int8.json): the quantisation its scores came from (models/int8.SCHEME);
    # None in gate.json, and in int8 readings written before per-token int8 (stale: not applied)
    quantization: str | None = None

    def save(self, directory: Path, name: str = CALIBRATION_FILE) -> Path:
        """Write it as `name` (gate.json, or gate-int8.json for the int8 draft's reading) in `directory`,
        atomically."""
        from smoothie_cli.atomic import write_text_atomic

        path = Path(directory) / name
        write_text_atomic(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    def describe(self) -> str:
        """The rule and what it gave on the calibration prompts, for a model card."""
        v = self.validation
        nan = float("nan")
        score = (
            "the log-odds of the gate probe (on two middle layers, cross-fitted on the train split)"
            if self.reading == "probe"
            else "log P(<Toc>) − log P(<Safe>) at the first tag token"
        )
        prompts = "out-of-fold train prompts" if self.reading == "probe" else "calibration prompts"
        return (
            f"toxic when {score} exceeds {self.threshold:.3f}, "
            f"chosen so that the {v.get('confidence') or 0.95:.0%} Clopper-Pearson upper bound of "
            f"over-refusal on the {prompts} is ≤ {self.max_over_refusal:.0%} (there: F1 "
            f"{v.get('f1', nan):.3f}, recall {v.get('recall', nan):.3f}, over-refusal "
            f"{v.get('over_refusal', nan):.3f}, bound {v.get('over_refusal_upper', nan):.3f})"
        )

    @classmethod
    def load(cls, directory: str | Path | None, name: str = CALIBRATION_FILE) -> GateCalibration | None:
        """The calibration stored in a draft's directory (`name`: gate.json, or gate-int8.json for the int8
        draft's own reading), or None (a model tuned elsewhere: read greedily).

        The threshold must be a finite number: NaN would let every prompt through, ±inf would pass or
        refuse all of them.
        """
        from typing import Annotated, Literal

        from pydantic import BaseModel, ConfigDict, Field

        from smoothie_cli.jsonfile import read_json, validate

        class GateFile(BaseModel):
            model_config = ConfigDict(extra="forbid")
            threshold: Annotated[float, Field(allow_inf_nan=False)]
            max_over_refusal: Annotated[float, Field(ge=0.0, le=1.0)]
            validation: dict[str, float | None] = Field(default_factory=dict)
            reading: Literal["margin", "probe"] = "margin"
            quantization: str | None = None

        if directory is None or not (Path(directory) / name).is_file():
            return None
        path = Path(directory) / name
        try:
            checked = validate(GateFile, read_json(path, "gate calibration"), name)
        except SmoothieError as error:
            raise SmoothieError(
                f"{path} is not a gate calibration ({error}); delete it to read the gate greedily"
            ) from None
        return cls(checked.threshold, checked.max_over_refusal, dict(checked.validation), checked.reading,
                   checked.quantization)  # fmt: skip


@functools.lru_cache(maxsize=4096)  # calibrate asks for the same few counts once per candidate threshold
def binomial_upper_bound(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on a rate after `successes` in `n` trials.

    The p with P(X ≤ successes | n, p) = 1 − confidence, found by bisection on the exact binomial CDF
    (hand-written: scipy is not a dependency, and 60 bisections of an O(n) sum are instant at these sizes).
    """
    if n <= 0:
        return 1.0
    if successes >= n:
        return 1.0
    alpha = 1 - confidence

    def cdf(p: float) -> float:
        if p <= 0:
            return 1.0
        if p >= 1:
            return 0.0
        log_p, log_q = math.log(p), math.log1p(-p)
        return sum(
            math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p
                     + (n - k) * log_q)
            for k in range(successes + 1)
        )  # fmt: skip

    low, high = successes / n, 1.0
    for _ in range(60):  # cdf falls as p grows
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) > alpha else (low, middle)
    return high


def calibrate(
    margins: Sequence[float],
    labels: Sequence[str],
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL,
    confidence: float | None = DEFAULT_CONFIDENCE,
    reading: str = "margin",
    groups: Sequence[str | None] | None = None,
) -> GateCalibration:
    """The threshold with the best F1 among those whose over-refusal on these prompts is at most
    `max_over_refusal` — with `confidence`, its one-sided Clopper-Pearson upper bound, so the rate on new
    prompts stays under the target with that confidence; with None, the point estimate.

    With `groups` (each prompt's source family, None for a prompt pooled only), the threshold must also
    keep every benign family of at least MIN_FAMILY prompts at or under `max_over_refusal` (point estimate:
    a bound on a hundred prompts would forbid any refusal). A pooled rate hides a family the gate refuses
    often — everyday chat among exam questions — and new traffic looks like some families more than others.

    Thresholds sit halfway between neighbouring margins, so a prompt never lands exactly on one.
    """
    if not 0 <= max_over_refusal <= 1:
        raise BadValue(f"must be in [0, 1] (a share of benign prompts), not {max_over_refusal}",
                       setting="max_over_refusal")  # fmt: skip
    if confidence is not None and not 0 < confidence < 1:
        raise SmoothieError(f"the calibration confidence must be in (0, 1), not {confidence}")
    toxic = [label == "toxic" for label in labels]
    if not any(toxic) or all(toxic):
        raise SmoothieError("calibrating the gate needs both toxic and safe prompts")
    values = sorted(set(margins))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1.0]
    safe_margins = [m for m, t in zip(margins, toxic) if not t]
    allowed = _most_flagged(len(safe_margins), max_over_refusal, confidence)
    families = _benign_families(margins, toxic, groups)
    best: tuple[float, float, float] | None = None  # (f1, recall, -threshold)
    chosen = candidates[-1]
    for threshold in candidates:
        if sum(m > threshold for m in safe_margins) > allowed:
            continue
        if any(sum(m > threshold for m in family) > max_over_refusal * len(family) + 1e-9
               for family in families.values()):  # fmt: skip
            continue
        flagged = [m > threshold for m in margins]
        key = (f1(toxic, flagged), _rate(flagged, toxic), -threshold)
        if best is None or key > best:
            best, chosen = key, threshold
    flagged = [m > chosen for m in margins]
    validation = {
        "f1": f1(toxic, flagged),
        "recall": _rate(flagged, toxic),
        "over_refusal": _rate(flagged, [not t for t in toxic]),
        "n": len(labels),
        "auprc": average_precision(margins, toxic),
    }
    if families:
        validation["family_over_refusal_max"] = max(
            sum(m > chosen for m in family) / len(family) for family in families.values()
        )
        validation["families"] = len(families)
    if confidence is not None:
        flagged_safe = sum(m > chosen for m in safe_margins)
        validation["over_refusal_upper"] = binomial_upper_bound(flagged_safe, len(safe_margins), confidence)
        validation["confidence"] = confidence
    return GateCalibration(round(chosen, 6), max_over_refusal, validation, reading)


def _benign_families(
    margins: Sequence[float], toxic: Sequence[bool], groups: Sequence[str | None] | None
) -> dict[str, list[float]]:
    """The safe prompts' scores per family, for families of at least MIN_FAMILY prompts."""
    if groups is None:
        return {}
    families: dict[str, list[float]] = {}
    for margin, is_toxic, group in zip(margins, toxic, groups, strict=True):
        if not is_toxic and group is not None:
            families.setdefault(group, []).append(margin)
    return {name: scores for name, scores in families.items() if len(scores) >= MIN_FAMILY}


def _most_flagged(n: int, max_over_refusal: float, confidence: float | None) -> int:
    """The most of `n` safe prompts a threshold may flag and keep its over-refusal (bound) within
    `max_over_refusal`; −1 when even none is too many. The bound grows with the count, so one scan up from
    zero replaces a bound per candidate threshold (thousands of distinct counts with a fine-grained score)."""
    allowed = -1
    while allowed < n and _over_refusal_bound(allowed + 1, n, confidence) <= max_over_refusal + 1e-12:
        allowed += 1
    return allowed


def _over_refusal_bound(flagged: int, n: int, confidence: float | None) -> float:
    if confidence is None:
        return flagged / n if n else 0.0
    return binomial_upper_bound(flagged, n, confidence)


def average_precision(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the precision-recall curve as average precision: Σ (R_k − R_{k−1}) P_k over the distinct
    score thresholds, highest first (ties enter together; the same definition as scikit-learn's)."""
    total = sum(positive)
    if total == 0:
        return float("nan")
    pairs = sorted(zip(scores, positive), key=lambda x: -x[0])
    area, hits, seen, last_recall, index = 0.0, 0, 0, 0.0, 0
    while index < len(pairs):
        score = pairs[index][0]
        while index < len(pairs) and pairs[index][0] == score:
            hits += bool(pairs[index][1])
            seen += 1
            index += 1
        recall = hits / total
        area += (recall - last_recall) * hits / seen
        last_recall = recall
    return area


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """P(a random positive scores above a random negative), ties counting half (Mann-Whitney)."""
    pos = sorted(s for s, p in zip(scores, positive) if p)
    neg = sorted(s for s, p in zip(scores, positive) if not p)
    if not pos or not neg:
        return float("nan")
    import bisect

    wins = sum(bisect.bisect_left(neg, s) + 0.5 * (bisect.bisect_right(neg, s) - bisect.bisect_left(neg, s))
               for s in pos)  # fmt: skip
    return wins / (len(pos) * len(neg))


def _rate(flagged: Sequence[bool], among: Sequence[bool]) -> float:
    count = sum(among)
    return sum(f and a for f, a in zip(flagged, among)) / count if count else 0.0


def gate_scores(
    labels: Sequence[str], gates: Sequence[Gate], seed: int = 0, margins: Sequence[float] | None = None
) -> dict[str, Score]:
    """Toxic is the positive class; a request counts as refused when the gate says toxic. With the tag
    `margins`, also the threshold-free AUPRC and ROC AUC (bootstrap 95% intervals)."""
    flagged = [g == "toxic" for g in gates]
    toxic = [label == "toxic" for label in labels]
    scores = {
        "gate_precision": proportion([float(t) for t, f in zip(toxic, flagged) if f]),
        "gate_recall": proportion([float(f) for t, f in zip(toxic, flagged) if t]),
        "gate_f1": _f1_with_interval(toxic, flagged, seed),
        "over_refusal": proportion([float(f) for t, f in zip(toxic, flagged) if not t]),
        "untagged": proportion([float(g == "untagged") for g in gates]),
        "gate_accuracy": proportion([float(t == f) for t, f in zip(toxic, flagged)]),
    }
    if margins is not None:
        scores["gate_auprc"] = _bootstrap(average_precision, list(margins), toxic, seed)
        scores["gate_auc"] = _bootstrap(roc_auc, list(margins), toxic, seed)
    return scores


def _bootstrap(metric: Any, scores: list[float], toxic: list[bool], seed: int, rounds: int = 200) -> Score:
    """A ranking metric with a percentile-bootstrap 95% interval."""
    n = len(toxic)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    rng = random.Random(seed)
    samples = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        value = metric([scores[i] for i in picks], [toxic[i] for i in picks])
        if not math.isnan(value):
            samples.append(value)
    samples.sort()
    if not samples:
        return Score(metric(scores, toxic), float("nan"), float("nan"), n)
    low = samples[int(0.025 * len(samples))]
    high = samples[max(int(0.975 * len(samples)) - 1, 0)]
    return Score(metric(scores, toxic), low, high, n)


def f1(toxic: Sequence[bool], flagged: Sequence[bool]) -> float:
    hits = sum(t and f for t, f in zip(toxic, flagged))
    denominator = sum(toxic) + sum(flagged)
    return 2 * hits / denominator if denominator else 0.0


def _f1_with_interval(toxic: Sequence[bool], flagged: Sequence[bool], seed: int, rounds: int = 1000) -> Score:
    """F1 with a percentile-bootstrap 95% interval (F1 is not a proportion, so no Wilson interval)."""
    n = len(toxic)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    rng = random.Random(seed)
    pairs = list(zip(toxic, flagged))
    samples = sorted(f1(*zip(*(rng.choice(pairs) for _ in range(n)))) for _ in range(rounds))
    return Score(f1(toxic, flagged), samples[int(0.025 * rounds)], samples[int(0.975 * rounds) - 1], n)
