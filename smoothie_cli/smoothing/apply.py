"""The arithmetic of run-time smoothing, shared by the transformers processor and the vLLM one.

Imports torch only (inside the function), so vLLM's environment can load it without smoothie's other
dependencies.
"""

from __future__ import annotations

import math
from typing import Any, Literal

Mode = Literal["scale", "bias", "lower"]
MODES = ("scale", "bias", "lower")


def factors_for(scales: Any, mode: str) -> Any:
    """What `apply_factors` takes for `mode`: the scales themselves, or their logs for bias mode (log 0 =
    -inf: the token can never be chosen). `scales` is a float32 torch tensor."""
    import torch

    return torch.log(scales) if mode == "bias" else scales


def apply_factors(scores: Any, factors: Any, mode: str) -> Any:
    """Scores with the first len(factors) columns smoothed, in place. scale: logit × S (what a scaled
    lm_head row does); lower: × S only where that lowers the logit; bias: + log S."""
    import torch

    # vocabularies may differ in padding rows (151,936 vs 152,064): smooth the ids both have
    width = min(scores.shape[-1], factors.shape[0])
    head = scores[..., :width]
    factors = factors[:width].to(scores.device, scores.dtype)
    if mode == "scale":
        head.mul_(factors)
    elif mode == "lower":
        head.copy_(torch.minimum(head, head * factors))
    elif mode == "bias":
        head.add_(factors)
    else:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return scores


def bias_value(scale: float, floor: float) -> float:
    """log(S) for an additive logit_bias, clamped to `floor` (OpenAI servers accept -100 at the lowest)."""
    return max(math.log(scale), floor) if scale > 0 else floor
