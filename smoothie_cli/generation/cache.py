"""A batch-1 causal LM with its own KV cache: fed a block of tokens at a time, cropped back on rejection."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import torch


class CachedModel:
    """One model and one KV cache over one growing sequence. Counts its forwards and their seconds."""

    def __init__(self, model: Any, cache: Any = None, length: int = 0) -> None:
        from transformers import DynamicCache

        self.model = model
        self.device = next(model.parameters()).device
        self.cache = DynamicCache() if cache is None else cache
        self.length = length  # positions held in the cache
        self.forwards = 0
        self.seconds = 0.0

    def feed(self, tokens: Sequence[int], keep: int = 1) -> torch.Tensor:
        """Run `tokens` after the cached context; float32 logits of the last `keep` positions [keep, V]."""
        if not tokens:
            return torch.empty(0)
        start = time.perf_counter()
        ids = torch.tensor([list(tokens)], device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True, logits_to_keep=keep)
        self.length += len(tokens)
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return out.logits[0].float()

    def crop(self, length: int) -> None:
        """Forget every position after `length` (rejected draft tokens)."""
        if length < self.length:
            # a negative count removes that many positions in transformers 4.x and 5 alike (5 refuses a
            # positive target length)
            self.cache.crop(length - self.length)
            self.length = length

    def fork(self) -> CachedModel:
        """A copy of this context (the cache copied) to continue separately: a shared prefix computed once."""
        return CachedModel(self.model, copy.deepcopy(self.cache), self.length)
