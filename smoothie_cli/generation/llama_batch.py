"""Batched and continuous decoding on llama.cpp: every row its own KV sequence, one `llama_decode` per step.

The transformers batch (`continuous.ContinuousBatch`) left-pads rows into one tensor and stacks their caches;
llama.cpp keeps a sequence id per row in one unified cache, so a row joins by prefilling its own sequence and
leaves by clearing it — no padding, no copies. Same interface (`admit`, `step`, `drop`, `len`), so `serve`'s
scheduler and `Engine.answer_batch` use either engine unchanged. Every row shares one `LogitsPipeline` and
one random generator, as there.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.models.llama_cpp import LlamaCppModel, Row
from smoothie_cli.progress import Progress, no_progress


@dataclass
class _Running:
    sequence: int
    ids: list[int]  # what the sequence holds: the prompt and the tokens fed since
    next: int  # the chosen token, not yet fed


class LlamaCppBatch:
    """Rows (each named by a caller's key) decoding together on one `LlamaCppModel`."""

    def __init__(self, model: LlamaCppModel, pipeline: LogitsPipeline | None = None,
                 generator: torch.Generator | None = None) -> None:  # fmt: skip
        self.model, self.pipeline, self.generator = model, pipeline or LogitsPipeline(), generator
        self.rows: dict[Hashable, _Running] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def capacity(self) -> int:
        """Rows that can still join (sequences free)."""
        return len(self.model.free)

    def admit(self, prompts: Sequence[Sequence[int]], keys: Sequence[Hashable]) -> dict[Hashable, int]:
        """Prefill `prompts` (each its own sequence, one call) and join them; {key: its first new token}."""
        if len(set(keys) | set(self.rows)) != len(keys) + len(self.rows):
            raise ValueError("every row needs a key of its own")
        sequences = [self.model.claim() for _ in keys]
        try:
            logits = self.model.decode_rows([Row(s, list(p), 0) for s, p in zip(sequences, prompts)])
        except BaseException:
            for sequence in sequences:
                self.model.release(sequence)
            raise
        chosen = self._choose([list(p) for p in prompts], logits)
        for key, sequence, prompt, token in zip(keys, sequences, prompts, chosen):
            self.rows[key] = _Running(sequence, list(prompt), token)
        return dict(zip(keys, chosen))

    def step(self) -> dict[Hashable, int]:
        """Feed every row its chosen token; {key: the next token}."""
        if not self.rows:
            return {}
        keys = list(self.rows)
        running = [self.rows[k] for k in keys]
        logits = self.model.decode_rows([Row(r.sequence, [r.next], len(r.ids)) for r in running])
        for row in running:
            row.ids.append(row.next)
        chosen = self._choose([r.ids for r in running], logits)
        for row, token in zip(running, chosen):
            row.next = token
        return dict(zip(keys, chosen))

    def drop(self, keys: Sequence[Hashable]) -> None:
        """Remove rows (finished or cancelled); their sequences are cleared for the next ones."""
        for key in keys:
            row = self.rows.pop(key, None)
            if row is not None:
                self.model.release(row.sequence)

    def _choose(self, contexts: list[list[int]], logits: list[torch.Tensor]) -> list[int]:
        scores = torch.cat([x[-1:] for x in logits])
        return self.pipeline.choose(contexts, scores, self.generator).tolist()


def decode_all(
    model: LlamaCppModel,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: set[int],
    pipeline: LogitsPipeline,
    generator: torch.Generator | None = None,
    progress: Progress = no_progress,
    description: str = "generating",
) -> list[list[int]]:
    """Plain decoding of every prompt, as many at once as the model has sequences: a row that finishes makes
    room for the next prompt at once (continuous batching), so no row waits for the longest answer."""
    batch = LlamaCppBatch(model, pipeline, generator)
    answers: list[list[int]] = [[] for _ in prompts]
    waiting = list(range(len(prompts)))
    done = 0
    progress(description, 0, len(prompts))

    def take(new: dict[Hashable, int]) -> None:
        nonlocal done
        finished = []
        for key, token in new.items():
            index = int(key)  # type: ignore[call-overload]
            answers[index].append(token)
            if token in stop_ids or len(answers[index]) >= max_new_tokens:
                finished.append(key)
        batch.drop(finished)
        done += len(finished)
        if finished:
            progress(description, done, len(prompts))

    if max_new_tokens <= 0:
        return answers
    while waiting or len(batch):
        room = min(batch.capacity, len(waiting))
        if room:
            joining, waiting = waiting[:room], waiting[room:]
            take(batch.admit([prompts[i] for i in joining], joining))
        elif not len(batch):
            raise RuntimeError("the llama.cpp model has no sequence free for a batch row")
        if len(batch):
            take(batch.step())
    return answers
