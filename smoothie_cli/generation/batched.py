"""Batched plain decoding: left-padded prompts, a KV cache, finished rows leave the batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from smoothie_cli.generation.prompts import chat_prompt, stop_ids
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.progress import Progress, no_progress

# called after every step with (row indices, the token each chose); returns rows to stop (cancelled) or None
StepCallback = Callable[[list[int], list[int]], Iterable[int] | None]


class Generator(Protocol):
    """Anything that turns examples into answers: a model, a smoothed model, cautious speculation…"""

    name: str

    def generate(self, examples: Sequence[Any], progress: Progress = no_progress) -> list[str]: ...


@dataclass
class ModelGenerator:
    """Generation from a transformers model, `batch_size` prompts at a time, through one logits pipeline
    (`logits_processors` are the shaping processors, e.g. smoothing scales; `sampling` the rest)."""

    model: Any
    tokenizer: Any
    max_new_tokens: int = 128
    batch_size: int = 8
    logits_processors: list[Any] = field(default_factory=list)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    name: str = "model"
    pipeline: Any = None  # a ready LogitsPipeline instead of the two fields above
    stop: Callable[[list[int]], bool] | None = None  # given a row's new ids so far: True ends that row

    def generate(self, examples: Sequence[Any], progress: Progress = no_progress) -> list[str]:
        prompts = [chat_prompt(self.tokenizer, e) for e in examples]
        tokens = self.generate_ids(prompts, progress)
        return self.tokenizer.batch_decode(tokens, skip_special_tokens=True)

    def generate_ids(self, prompts: Sequence[str], progress: Progress = no_progress) -> list[list[int]]:
        """The new token ids for each prompt text (already in chat form)."""
        from smoothie_cli.generation.logits import LogitsPipeline, new_generator

        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        pipeline = self.pipeline or LogitsPipeline(self.sampling, self.logits_processors)
        generator = new_generator(pipeline.sampling.seed, next(self.model.parameters()).device)
        # longest first, so each batch pads little and the slowest batch shows up early in the ETA
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        answers: list[list[int]] = [[] for _ in prompts]
        description = f"generating ({self.name})"
        progress(description, 0, len(prompts))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = tokenizer(
                [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            )
            tokens = decode_batch(
                self.model,
                encoded["input_ids"],
                encoded["attention_mask"],
                max_new_tokens=self.max_new_tokens,
                eos_ids=stop_ids(self.model, tokenizer),
                pipeline=pipeline,
                generator=generator,
                on_step=None if self.stop is None else _stopper(self.stop),
            )
            for i, row in zip(batch, tokens):
                answers[i] = row
            progress(description, start + len(batch), len(prompts))
        return answers


def decode_batch(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    pipeline: Any = None,
    generator: Any = None,
    cache: Any = None,
    on_step: StepCallback | None = None,
) -> list[list[int]]:
    """Decoding of a left-padded batch with a KV cache through `pipeline` (None: greedy); new tokens per row.

    Unlike `generate`, rows that reach end-of-turn leave the batch (their KV cache rows are dropped), so a
    batch costs about the sum of its answers' lengths instead of batch size × the longest answer; this is
    what makes batching pay on CPU when answers differ in length. `on_step` sees every step's tokens and
    may stop rows (a client that went away).

    `cache` may already hold a shared prompt prefix for every row; `attention_mask` then covers the prefix
    columns too (padding sits between prefix and suffix, and positions follow the mask).
    """
    import torch
    from transformers import DynamicCache

    from smoothie_cli.generation.logits import LogitsPipeline

    pipeline = pipeline or LogitsPipeline()
    device = next(model.parameters()).device
    sequences = input_ids.to(device)
    mask = attention_mask.to(device)
    rows = torch.arange(sequences.shape[0], device=device)
    new_tokens: list[list[int]] = [[] for _ in range(sequences.shape[0])]
    cache = DynamicCache() if cache is None else cache
    step_input = sequences
    eos = torch.tensor(sorted(eos_ids), device=device)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = masked_logits(model, step_input, mask, cache)
            context = _unpadded(sequences, mask) if pipeline.needs_context else sequences
            chosen = pipeline.choose(context, logits, generator)
            row_list, token_list = rows.tolist(), chosen.tolist()
            for row, token in zip(row_list, token_list):
                new_tokens[row].append(token)
            finished = torch.isin(chosen, eos)
            if on_step is not None:
                stopped = set(on_step(row_list, token_list) or ())
                if stopped:
                    finished |= torch.tensor([r in stopped for r in row_list], device=device)
            if bool(finished.all()):
                break
            if bool(finished.any()):
                keep = (~finished).nonzero().flatten()
                cache.batch_select_indices(keep)
                rows, chosen, sequences, mask = rows[keep], chosen[keep], sequences[keep], mask[keep]
            sequences = torch.cat([sequences, chosen[:, None]], dim=-1)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            step_input = chosen[:, None]
    return new_tokens


def _stopper(stop: Callable[[list[int]], bool]) -> StepCallback:
    """A step callback that ends each row once `stop` says so about the ids the row has written."""
    written: dict[int, list[int]] = {}

    def on_step(rows: list[int], tokens: list[int]) -> list[int]:
        ended = []
        for row, token in zip(rows, tokens):
            written.setdefault(row, []).append(token)
            if stop(written[row]):
                ended.append(row)
        return ended

    return on_step


def masked_logits(model: Any, ids: Any, mask: Any, cache: Any = None, keep: int = 1) -> Any:
    """Last-position logits of `ids` run after `cache` for left-padded rows: `mask` covers the cached columns
    and `ids`, and positions follow the mask (padding takes none), so a row's logits do not depend on how
    much padding its batch gave it."""
    import torch

    from smoothie_cli.generation.cache import with_cache

    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, **with_cache(model, cache),
                    use_cache=cache is not None, logits_to_keep=keep)  # fmt: skip
    return out.logits[:, -1]


def _unpadded(sequences: Any, mask: Any) -> Any:
    """Each row's ids with its padding replaced by its first real id, for processors that read the context
    (a pad id, usually end-of-text, would otherwise be penalised as if the row had written it)."""
    first = sequences.gather(1, mask.argmax(dim=1, keepdim=True))
    return sequences.where(mask.bool(), first)
