"""Scores with 95% intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Score:
    value: float
    low: float
    high: float
    n: int

    def as_dict(self, metric: str) -> dict[str, object]:
        return {metric: self.value, f"{metric}_ci95": [self.low, self.high]}


def proportion(successes: Sequence[float]) -> Score:
    """Mean of 0/1 outcomes with a Wilson 95% interval (sane at 0, 1 and small n)."""
    n = len(successes)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    p = sum(successes) / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return Score(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean(values: Sequence[float]) -> Score:
    """Mean with a normal-approximation 95% interval."""
    n = len(values)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    m = sum(values) / n
    if n == 1:
        return Score(m, m, m, 1)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = Z95 * sd / math.sqrt(n)
    return Score(m, m - half, m + half, n)


def per_prompt(outcomes: Sequence[Sequence[float]]) -> Score:
    """A 0/1 rate over prompts with one or more samples each: Wilson when each prompt has one, else the mean
    of the per-prompt rates with a normal interval (samples of one prompt are not independent)."""
    if all(len(row) == 1 for row in outcomes):
        return proportion([row[0] for row in outcomes])
    return mean([sum(row) / len(row) for row in outcomes if row])
