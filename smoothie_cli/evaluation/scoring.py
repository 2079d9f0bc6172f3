"""Log-likelihood of continuations given contexts, batched (as lm-evaluation-harness scores options)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smoothie_cli.progress import Progress, no_progress


class LogitsCache:
    """Last-position logits of contexts already seen, before any logits processor.

    Run-time smoothing changes only the final logits, never the hidden states, so a sweep that scores the
    same multiple-choice contexts under many settings runs the model over them once and re-applies each
    setting's processor to the cached logits (bounded by `max_bytes`)."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.rows: dict[tuple[int, ...], Any] = {}
        self.max_bytes = max_bytes
        self.bytes = 0

    def get(self, context: tuple[int, ...]) -> Any:
        return self.rows.get(context)

    def put(self, context: tuple[int, ...], logits: Any) -> None:
        size = logits.numel() * logits.element_size()
        if self.bytes + size <= self.max_bytes:
            self.rows[context] = logits
            self.bytes += size


def loglikelihoods(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 8,
    logits_processors: Sequence[Any] = (),
    progress: Progress = no_progress,
    cache: LogitsCache | None = None,
) -> list[tuple[float, int]]:
    """(sum of log p(continuation tokens | context), number of continuation tokens) for each pair.

    Context and continuation are tokenized separately and joined (the harness's way), sequences are
    left-padded with explicit position ids, and only the last positions' logits are computed
    (`logits_to_keep`), so a 150k-token vocabulary never costs a full [batch, length, vocab] tensor.
    `logits_processors` (e.g. the run-time smoothing scales) are applied to the logits before softmax.
    """
    encoded = []
    for context, continuation in pairs:
        ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        encoded.append((ctx, cont))
    # Options that are one token each (MMLU's " A" … " D") share one forward pass over their context.
    single: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, cont) in enumerate(encoded):
        if len(cont) == 1:
            single.setdefault(tuple(ctx), []).append(i)
    results: list[tuple[float, int]] = [(0.0, 0)] * len(encoded)
    cache = cache if cache is not None else LogitsCache(0)
    contexts = list(single)
    missing = [c for c in contexts if cache.get(c) is None]
    fresh: dict[tuple[int, ...], Any] = {}
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        logits = _forward_logits(model, [list(c) for c in batch], 1)[:, -1]
        for row, context in enumerate(batch):
            fresh[context] = logits[row].clone()
            cache.put(context, fresh[context])
        progress("scoring options", start + len(batch), len(missing))
    for context in contexts:
        logits = fresh.get(context)
        logits = cache.get(context) if logits is None else logits
        logprobs = _apply(logits[None], logits_processors)[0]
        for i in single[context]:
            results[i] = (float(logprobs[encoded[i][1][0]]), 1)
    rest = [i for i, (_, cont) in enumerate(encoded) if len(cont) != 1]
    _score_sequences(model, encoded, rest, results, batch_size, logits_processors, progress)
    return results


def _left_padded(sequences: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _forward_logits(model: Any, sequences: Sequence[Sequence[int]], keep: int) -> Any:
    """float32 logits of the last `keep` positions; sequences left-padded with explicit positions."""
    import torch

    device = next(model.parameters()).device
    input_ids, mask, positions = _left_padded(sequences, 0)
    with torch.inference_mode():
        return model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            logits_to_keep=keep,
        ).logits.float()


def _apply(logits: Any, processors: Sequence[Any]) -> Any:
    """log-softmax after the logits processors (the run-time smoothing scales)."""
    import torch

    with torch.inference_mode():
        for processor in processors:
            logits = processor(None, logits)
        return torch.log_softmax(logits, dim=-1)


def _forward(model: Any, sequences: Sequence[Sequence[int]], keep: int, processors: Sequence[Any]) -> Any:
    return _apply(_forward_logits(model, sequences, keep), processors)


def _score_sequences(
    model: Any,
    encoded: Sequence[tuple[list[int], list[int]]],
    indices: Sequence[int],
    results: list[tuple[float, int]],
    batch_size: int,
    processors: Sequence[Any],
    progress: Progress,
) -> None:
    import torch

    order = sorted(indices, key=lambda i: -(len(encoded[i][0]) + len(encoded[i][1])))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        keep = max(len(encoded[i][1]) for i in batch) + 1
        logprobs = _forward(model, [encoded[i][0] + encoded[i][1] for i in batch], keep, processors)
        for row, i in enumerate(batch):
            cont = encoded[i][1]
            # logits at position t predict token t+1: the continuation's predictors are the `len(cont)`
            # positions just before the last one
            predictors = logprobs[row, keep - 1 - len(cont) : keep - 1]
            targets = torch.tensor(cont, device=predictors.device)
            results[i] = (float(predictors.gather(-1, targets[:, None]).sum()), len(cont))
        progress("scoring options", start + len(batch), len(order))
