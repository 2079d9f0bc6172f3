"""The same scales at run time, with no weight edit: a transformers LogitsProcessor and a vLLM logit_bias.

`scale` mode multiplies each token's logit by S, exactly what a scaled lm_head row does (the row's dot
product with the hidden state is multiplied by S). Note that it is not a pure suppression: a negative
logit moves *up* toward zero. `bias` mode adds log(S) instead, which multiplies the token's unnormalised
probability by S: it only ever lowers a token, and works wherever an additive bias is accepted (vLLM's
`SamplingParams(logit_bias=...)`, OpenAI-style `logit_bias`).

`lower` mode is scale mode that never raises: a positive logit is multiplied by S (as scale mode does, so
greedy answers match scale mode's wherever the winning logits are positive), a negative one is left as it
is. Under sampling, scale mode lifts target tokens from the far tail toward zero; lower mode cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import LogitsProcessor

from smoothie_cli.smoothing.apply import MODES, Mode, apply_factors, bias_value
from smoothie_cli.smoothing.scales import TokenScales

# OpenAI-compatible servers (vLLM included) clamp logit_bias to [-100, 100]; -100 means "never".
MIN_LOGIT_BIAS = -100.0


class TokenScaleLogitsProcessor(LogitsProcessor):
    """Apply per-token scales to next-token scores: `model.generate(..., logits_processor=[this])`."""

    def __init__(self, scales: TokenScales | Any, mode: Mode = "scale") -> None:
        import torch

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        if isinstance(scales, TokenScales):
            size = max(scales.scales, default=-1) + 1
            scales = scales.vector(size)
        self.scales = torch.as_tensor(scales, dtype=torch.float32)
        self.bias = torch.log(self.scales)  # log(0) = -inf: the token can never be chosen

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        return apply_factors(scores.clone(), self.bias if self.mode == "bias" else self.scales, self.mode)


def logit_bias_map(scales: TokenScales) -> dict[int, float]:
    """{token id: log(S)} for every scaled token, for vLLM's `SamplingParams(logit_bias=...)`."""
    return {i: bias_value(s, MIN_LOGIT_BIAS) for i, s in scales.scales.items()}


def analysis_for(source: Any, config: Any, path: str) -> dict[str, Any]:
    """The analysis of a model's vocabulary: read from an analysis.json (checked against the vocabulary) or,
    with 'auto', computed now (under a second)."""
    from pathlib import Path

    from smoothie_cli.models import tokenizer_location
    from smoothie_cli.vocab.analysis import analysis_document
    from smoothie_cli.vocab.tokens import load_vocabulary

    vocab = load_vocabulary(tokenizer_location(source))
    return analysis_document(source.spec, vocab, config, None if path == "auto" else Path(path))


def setting_processors(
    analysis: dict[str, Any] | None, label: str | None, min_scale: float, smoothness: float, mode: str
) -> tuple[list[TokenScaleLogitsProcessor], dict[str, Any]]:
    """The run-time processors of one smoothing setting (none for `analysis` None) and its description."""
    from smoothie_cli.errors import UnknownChoice
    from smoothie_cli.smoothing.scales import check_parameters, scales_from_analysis

    if analysis is None:
        return [], {"label": "base", "scales": None}
    if mode not in MODES:
        raise UnknownChoice(mode, MODES, what="smoothing mode", setting="mode")
    check_parameters(min_scale, smoothness)
    token_scales = scales_from_analysis(analysis, min_scale, smoothness)
    processor = TokenScaleLogitsProcessor(token_scales, mode=mode)  # type: ignore[arg-type]
    setting = {"label": f"min_scale {min_scale}, smoothness {smoothness}, {mode}", "scales": label,
               "min_scale": min_scale, "smoothness": smoothness, "mode": mode}  # fmt: skip
    return [processor], setting


# ---- the same setting, asked of an OpenAI-compatible server ------------------------------------------------


@dataclass(frozen=True)
class ServerSmoothing:
    """How a server is asked to smooth one setting: an additive `logit_bias` over the vocabulary (any
    OpenAI-compatible server; bias mode only), or `vllm_xargs` for smoothie's logits processor in vLLM (every
    mode; its scales are the server's). Both None: nothing to ask."""

    logit_bias: dict[str, float] | None
    xargs: dict[str, Any] | None
    label: str

    def body(self) -> dict[str, Any] | None:
        """The request's extra body (OpenAI client `extra_body`)."""
        if self.logit_bias:
            return {"logit_bias": self.logit_bias}
        return {"vllm_xargs": self.xargs} if self.xargs else None


def check_server_mode(mode: str, processor: bool) -> None:
    """A setting of `mode` can travel to a server: every mode through smoothie's processor, else bias only."""
    from smoothie_cli.errors import Conflict

    if not processor and mode != "bias":
        raise Conflict(
            f"{mode} mode needs smoothie's logits processor in the server (declare that it runs there); bias "
            "mode also travels to any server as a logit_bias",
            setting="mode",
        )


def server_smoothing(
    analysis: Callable[[], dict[str, Any]] | None,
    min_scale: float,
    smoothness: float,
    mode: str,
    processor: bool,
) -> ServerSmoothing:
    """One setting as a server applies it. With `processor` the server runs smoothie's vLLM processor and only
    the setting travels; else bias mode travels as a logit_bias over the analysed vocabulary (`analysis`
    reads it, called only then; None: no smoothing), and scale and lower modes cannot travel at all."""
    from smoothie_cli.errors import UnknownChoice
    from smoothie_cli.smoothing.scales import check_parameters, scales_from_analysis

    if mode not in MODES:
        raise UnknownChoice(mode, MODES, what="smoothing mode", setting="mode")
    check_parameters(min_scale, smoothness)
    if processor:
        xargs = {"smoothie_mode": mode, "smoothie_min_scale": min_scale, "smoothie_smoothness": smoothness}
        return ServerSmoothing(
            None, xargs, f"upstream processor: min_scale {min_scale}, smoothness {smoothness}, {mode}"
        )
    if analysis is None:
        return ServerSmoothing(None, None, "none")
    check_server_mode(mode, processor)
    bias = logit_bias_map(scales_from_analysis(analysis(), min_scale, smoothness))
    kept = {str(i): b for i, b in bias.items() if b != 0.0}  # S = 1 (min_scale 1.0): nothing to send
    label = f"logit_bias: min_scale {min_scale}, smoothness {smoothness} ({len(kept):,} tokens)"
    return ServerSmoothing(kept or None, None, label)
