"""One logits pipeline for every decoding path: the draft and the target see the same processors.

Built on transformers' `LogitsProcessorList`. Two stages, in this order:
1. shaping — processors that change what the model prefers, greedy or not: smoothing scales (scale or bias
   mode), a logit bias, the repetition penalty;
2. sampling warpers — temperature, top-k, top-p — only when sampling (they never change the argmax).

Greedy decoding takes the argmax after shaping; sampling draws from the softmax after both stages. Speculative
decoding verifies with the same pipeline, so smoothing + a draft gives exactly the smoothed target's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from smoothie_cli.generation.sampling import SamplingConfig


class LogitBiasProcessor(LogitsProcessor):
    """OpenAI-style `logit_bias`: {token id: value added to its logit}; ids past the vocabulary are ignored.

    transformers' `SequenceBiasLogitsProcessor` does this for token *sequences* and rebuilds its tensors on
    the first call; one dense vector is all a per-token bias needs.
    """

    def __init__(self, bias: Mapping[int, float]) -> None:
        size = max(bias, default=-1) + 1
        self.bias = torch.zeros(size)
        for token, value in bias.items():
            self.bias[int(token)] = float(value)

    def __call__(self, input_ids: Any, scores: torch.Tensor) -> torch.Tensor:
        width = min(scores.shape[-1], self.bias.shape[0])
        out = scores.clone()
        out[..., :width] += self.bias[:width].to(scores.device, scores.dtype)
        return out


class LogitsPipeline:
    """Shaping processors, then sampling warpers; `choose` picks tokens, `probabilities` gives the
    distributions speculative sampling compares."""

    def __init__(
        self,
        sampling: SamplingConfig | None = None,
        processors: Sequence[Any] = (),
        logit_bias: Mapping[int, float] | None = None,
    ) -> None:
        self.sampling = sampling or SamplingConfig()
        shaping: list[Any] = list(processors)
        if logit_bias:
            shaping.append(LogitBiasProcessor(logit_bias))
        # the penalty reads the context, so rows must carry their own (see `context_tensor`)
        self.needs_context = self.sampling.repetition_penalty != 1.0
        if self.needs_context:
            shaping.append(RepetitionPenaltyLogitsProcessor(self.sampling.repetition_penalty))
        warpers: list[Any] = []
        if not self.sampling.greedy:
            if self.sampling.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(self.sampling.temperature))
            if self.sampling.top_k:
                warpers.append(TopKLogitsWarper(self.sampling.top_k))
            if self.sampling.top_p < 1.0:
                warpers.append(TopPLogitsWarper(self.sampling.top_p))
        self.shaping = LogitsProcessorList(shaping)
        self.warpers = LogitsProcessorList(warpers)

    @property
    def greedy(self) -> bool:
        return self.sampling.greedy

    def shaped(self, contexts: Any, logits: torch.Tensor) -> torch.Tensor:
        """Float32 scores after the shaping stage; `contexts` is a [rows, length] id tensor or a list of
        id lists (one per row of `logits`)."""
        scores = logits.float()
        if not len(self.shaping):
            return scores
        return self.shaping(context_tensor(contexts, scores), scores)

    def probabilities(self, contexts: Any, logits: torch.Tensor) -> torch.Tensor:
        """Next-token distributions after both stages (for sampling and for speculative verification)."""
        scores = self.shaped(contexts, logits)
        if len(self.warpers):
            scores = self.warpers(context_tensor(contexts, scores), scores)
        if self.greedy:  # a point mass on the argmax
            return torch.nn.functional.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)
        return torch.softmax(scores, dim=-1)

    def choose(self, contexts: Any, logits: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        """One token per row: the argmax after shaping (greedy), else a draw from `probabilities`."""
        if self.greedy:
            return self.shaped(contexts, logits).argmax(dim=-1)
        return torch.multinomial(self.probabilities(contexts, logits), 1, generator=generator)[:, 0]


def context_tensor(contexts: Any, scores: torch.Tensor) -> torch.Tensor:
    """The ids each processor reads, one row per score row.

    Rows of different lengths are left-padded with their own first id: the processors here read the *set*
    of ids (repetition penalty), which padding with an id already present does not change."""
    if isinstance(contexts, torch.Tensor):
        return contexts.to(scores.device)
    rows = [list(c) or [0] for c in contexts]
    width = max(map(len, rows))
    return torch.tensor([[r[0]] * (width - len(r)) + r for r in rows], device=scores.device)


def new_generator(seed: int | None, device: Any = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    return generator
