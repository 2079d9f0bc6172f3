"""A batch-1 causal LM with its own KV cache: fed a block of tokens at a time, cropped back on rejection."""

from __future__ import annotations

import copy
import functools
import inspect
import time
from collections.abc import Sequence
from typing import Any

import torch


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """The keyword that hands `model` its KV cache: transformers ≥ 5.2x names it `cache` (and warns that
    `past_key_values` is deprecated), older versions `past_key_values`. Read from the forward's signature
    (a PEFT wrapper's from its base model's), so both work without a warning."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = inspect.signature(base.forward).parameters
    if "cache" in parameters or "past_key_values" in parameters:
        return {"cache": cache} if "cache" in parameters else {"past_key_values": cache}
    return {_library_cache_name(): cache}  # a wrapper passing **kwargs on to a transformers model


@functools.cache
def _library_cache_name() -> str:
    """The installed transformers' name for the cache keyword (read from one of its models)."""
    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def open_sequence(model: Any) -> Any:
    """One growing sequence of `model` with its own cache: a `CachedModel`, or the engine's own sequence
    when the model brings one (llama.cpp: models/llama_cpp.py), with the same `feed` / `crop` interface."""
    return model.sequence() if hasattr(model, "sequence") else CachedModel(model)


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
        self.prepared = False  # `prepare` has run

    def feed(self, tokens: Sequence[int], keep: int = 1) -> torch.Tensor:
        """Run `tokens` after the cached context; float32 logits of the last `keep` positions [keep, V]."""
        if not tokens:
            return torch.empty(0)
        start = time.perf_counter()
        ids = torch.tensor([list(tokens)], device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, **with_cache(self.model, self.cache), use_cache=True,
                             logits_to_keep=keep)  # fmt: skip
        self.length += len(tokens)
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return out.logits[0].float()

    def prepare(self) -> float:
        """Set up one-token forwards before they are timed (an int8 model packs its row kernels once:
        models/int8.py); the seconds it took. Walks the model once per sequence, not every round."""
        from smoothie_cli.models.int8 import prepack_rows

        if self.prepared:
            return 0.0
        start = time.perf_counter()
        prepack_rows(self.model)
        self.prepared = True
        return time.perf_counter() - start

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
