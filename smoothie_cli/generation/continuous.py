"""Continuous batching: batched plain decoding that rows join at any step and leave when they are done.

`batched.decode_batch` decodes a fixed set of rows to the end; a server receives requests while it decodes.
Here the batch is state: `admit` prefills new prompts (left-padded among themselves), picks their first tokens
and joins them to the running rows — the two KV caches are left-padded to one length and stacked — and
`step` runs one forward for every row. Positions follow the attention mask, so padding never shifts a row,
and each row decodes exactly as it would alone (greedy: the same tokens, up to float rounding of padded
attention). `drop` removes finished rows and trims padding columns no row needs any more.

Every row shares one `LogitsPipeline` (and one random generator): rows with different sampling settings
belong in different batches.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch

from smoothie_cli.generation.batched import _unpadded, masked_logits
from smoothie_cli.generation.logits import LogitsPipeline


class ContinuousBatch:
    """Rows (each named by a caller's key) decoding together; see the module docstring."""

    def __init__(
        self,
        model: Any,
        pipeline: LogitsPipeline | None = None,
        pad_id: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        self.model, self.pipeline = model, pipeline or LogitsPipeline()
        self.pad_id, self.generator = pad_id, generator
        self.device = next(model.parameters()).device
        self.keys: list[Hashable] = []
        self.cache: Any = None  # holds every position fed so far, rows left-padded to one length
        self.mask: torch.Tensor | None = None  # [rows, fed positions]
        self.sequences: torch.Tensor | None = None  # the ids fed so far (for processors that read them)
        self.next: torch.Tensor | None = None  # [rows] each row's chosen token, not yet fed

    def __len__(self) -> int:
        return len(self.keys)

    def admit(self, prompts: Sequence[Sequence[int]], keys: Sequence[Hashable]) -> dict[Hashable, int]:
        """Prefill `prompts`, join them to the batch; {key: its first new token}."""
        from transformers import DynamicCache

        if len(set(keys) | set(self.keys)) != len(keys) + len(self.keys):
            raise ValueError("every row needs a key of its own")
        width = max(map(len, prompts))
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + list(p) for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        cache = DynamicCache()
        logits = masked_logits(self.model, ids, mask, cache)
        chosen = self._choose(ids, mask, logits)
        if self.cache is None:
            self.cache, self.mask, self.sequences, self.next = cache, mask, ids, chosen
        else:
            assert self.mask is not None and self.sequences is not None and self.next is not None
            length = max(self.mask.shape[1], mask.shape[1])
            _stack_caches(self.cache, cache, self.mask.shape[1], mask.shape[1], length)
            self.mask = torch.cat([_pad_left(self.mask, length, 0), _pad_left(mask, length, 0)])
            self.sequences = torch.cat(
                [_pad_left(self.sequences, length, self.pad_id), _pad_left(ids, length, self.pad_id)]
            )
            self.next = torch.cat([self.next, chosen])
        self.keys += list(keys)
        return dict(zip(keys, chosen.tolist()))

    def step(self) -> dict[Hashable, int]:
        """Feed every row its chosen token; {key: the next token}."""
        if self.next is None or self.mask is None or self.sequences is None:
            return {}
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self), 1))], dim=-1)
        self.sequences = torch.cat([self.sequences, self.next[:, None]], dim=-1)
        logits = masked_logits(self.model, self.next[:, None], self.mask, self.cache)
        self.next = self._choose(self.sequences, self.mask, logits)
        return dict(zip(self.keys, self.next.tolist()))

    def drop(self, keys: Sequence[Hashable]) -> None:
        """Remove rows (finished or cancelled); trim the padding columns no remaining row attends to."""
        gone = set(keys)
        keep = [i for i, key in enumerate(self.keys) if key not in gone]
        if not keep:
            self.keys, self.cache, self.mask, self.sequences, self.next = [], None, None, None, None
            return
        if len(keep) == len(self.keys):
            return
        assert self.mask is not None and self.sequences is not None and self.next is not None
        index = torch.tensor(keep, device=self.device)
        self.cache.batch_select_indices(index)
        self.keys = [self.keys[i] for i in keep]
        self.mask, self.sequences, self.next = self.mask[index], self.sequences[index], self.next[index]
        start = int(self.mask.any(dim=0).int().argmax())  # the first column some row attends to
        if start > 0:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
            self.mask, self.sequences = self.mask[:, start:], self.sequences[:, start:]

    def _choose(self, ids: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        context = _unpadded(ids, mask) if self.pipeline.needs_context else ids
        return self.pipeline.choose(context, logits, self.generator)


def _pad_left(rows: torch.Tensor, length: int, value: int) -> torch.Tensor:
    missing = length - rows.shape[1]
    return torch.nn.functional.pad(rows, (missing, 0), value=value) if missing else rows


def _stack_caches(running: Any, joining: Any, running_length: int, joining_length: int, length: int) -> None:
    """Append `joining`'s rows to `running`, both left-padded (zeros, masked out) to `length` positions.

    transformers' caches can select and repeat rows but not stack two caches of different lengths, so this
    writes the layers' key/value tensors [rows, heads, positions, dim] directly (DynamicLayer's fields)."""
    for mine, theirs in zip(running.layers, joining.layers):
        pad_mine, pad_theirs = (0, 0, length - running_length, 0), (0, 0, length - joining_length, 0)
        mine.keys = torch.cat(
            [torch.nn.functional.pad(mine.keys, pad_mine), torch.nn.functional.pad(theirs.keys, pad_theirs)]
        )
        mine.values = torch.cat(
            [
                torch.nn.functional.pad(mine.values, pad_mine),
                torch.nn.functional.pad(theirs.values, pad_theirs),
            ]
        )
