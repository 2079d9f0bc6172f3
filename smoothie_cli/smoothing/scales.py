"""Turn an analysis into one scale per token (smoothie-qwen's formula)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smoothie_cli.errors import BadValue


def smoothing_scale(p: float, min_scale: float, smoothness: float) -> float:
    """S = 1 − (1 − min_scale)·ln(1 + (smoothness − 1)·p)/ln(smoothness); 1 at p ≤ 0, min_scale at p ≥ 1."""
    check_parameters(min_scale, smoothness)
    if p <= 0:
        return 1.0
    if p >= 1:
        return min_scale
    return 1.0 - (1.0 - min_scale) * math.log1p((smoothness - 1.0) * p) / math.log(smoothness)


def check_parameters(min_scale: float, smoothness: float) -> None:
    if not 0.0 <= min_scale <= 1.0 or math.isnan(min_scale):
        raise BadValue(f"{min_scale} is outside [0, 1]; 0.5 is the recommended value", setting="min_scale")
    if not smoothness > 1.0:
        raise BadValue(
            f"{smoothness} must be greater than 1; 10 is the recommended value", setting="smoothness"
        )


@dataclass
class TokenScales:
    """Scales that differ from 1, keyed by token id, with where they came from."""

    scales: dict[int, float]
    min_scale: float
    smoothness: float
    target_tokens: int
    scaled_broken_tokens: int
    analysis_sha256: str
    vocab_sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    def vector(self, rows: int) -> Any:
        """A float32 numpy vector of length `rows`: 1 everywhere but the scaled tokens."""
        import numpy as np

        vector = np.ones(rows, dtype=np.float32)
        ids = [i for i in self.scales if i < rows]
        vector[ids] = [self.scales[i] for i in ids]
        return vector


def analysis_digest(document: dict[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def scales_from_analysis(document: dict[str, Any], min_scale: float, smoothness: float) -> TokenScales:
    """Target tokens get min_scale; analysed fragments get the formula at their weighted_prob; others 1."""
    check_parameters(min_scale, smoothness)
    scales: dict[int, float] = {}
    targets = broken = 0
    for row in document["tokens"]:
        kind = row["kind"]
        if kind.startswith("target"):
            scales[row["id"]] = min_scale
            targets += 1
        elif "weighted_prob" in row:
            s = smoothing_scale(row["weighted_prob"], min_scale, smoothness)
            if s != 1.0:
                scales[row["id"]] = s
                broken += 1
    scales = {i: s for i, s in scales.items() if s != 1.0}  # min_scale 1.0 changes nothing
    return TokenScales(
        scales=dict(sorted(scales.items())),
        min_scale=min_scale,
        smoothness=smoothness,
        target_tokens=targets,
        scaled_broken_tokens=broken,
        analysis_sha256=analysis_digest(document),
        vocab_sha256=document["vocabulary"]["sha256"],
    )


def scales_from_file(path: str | Path, min_scale: float = 0.5, smoothness: float = 10.0) -> TokenScales:
    """TokenScales from an analysis.json written by `smoothie analyze -o` (for the run-time processors)."""
    from smoothie_cli.vocab.analysis import read_analysis

    return scales_from_analysis(read_analysis(Path(path)), min_scale, smoothness)
