"""A GGUF model in llama.cpp (llama-cpp-python), behind the interface our decoders already use.

The target of `speculate` and `serve` can be llama.cpp on the GGUF file itself: its kernels read the 4- and
6-bit blocks directly, so a token costs a fraction of the memory traffic of the float32 copy transformers
decodes. What our verifier needs from it — run k tokens after a cached context with the logits of every one,
then forget the rejected positions — is llama.cpp's batch API (`llama_decode` with per-token output flags)
and its memory API (`llama_memory_seq_rm`). The high-level `llama_cpp.Llama` runs one sequence and keeps
logits for the whole context window when asked for more than the last position, so this uses the low-level
bindings the package publishes (`llama_cpp.llama_cpp`).

- `LlamaCppModel` owns the model, one context with up to `sequences` KV sequences, and one batch buffer.
- `LlamaCppModel.sequence()` is one sequence with `CachedModel`'s interface (`feed`, `crop`, `length`,
  `forwards`, `seconds`): speculative decoding runs on it unchanged. It reuses the positions a previous
  answer left in its sequence where the new prompt starts the same way (the chat template's system part),
  as llama.cpp's server does.
- `LlamaCppModel.decode_rows` runs one step of many sequences in one call: the continuous batch of `serve`
  and batched decoding (`generation/llama_batch.py`).

Logits come back as float32 torch tensors, so the one `LogitsPipeline` (smoothing scales, logit bias,
sampling) applies to this engine exactly as to transformers.

Exactness: llama.cpp's CPU kernels depend on how many tokens one call runs (repacked weights take a
4-row GEMM from 4 tokens, a tiled K-quant GEMM from 8; flash attention splits the KV across threads for a
single token once it holds more than 256 positions). So the logits of tokens verified together differ from
one-at-a-time decoding by rounding (measured: up to ~0.6 logits on the 1.5B Q4_K_M), and a greedy answer
verified in blocks can take the other branch where one-at-a-time decoding was a near tie — as llama.cpp's
own speculative decoding does. Sampled answers keep the target's distribution as computed per block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoothie_cli.errors import Conflict, SmoothieError
from smoothie_cli.progress import Progress, no_progress

ENGINES = ("auto", "torch", "llama.cpp")
INSTALL_HINT = "install it with `make llama-cpp` (or pip install llama-cpp-python)"


def available() -> bool:
    """Whether llama-cpp-python can be imported (it is an optional extra: `make llama-cpp`)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def require(setting: str | None = None) -> None:
    """Fail with the fix when llama-cpp-python is not installed."""
    if not available():
        raise SmoothieError(f"the llama.cpp engine needs llama-cpp-python; {INSTALL_HINT}", setting=setting)


def _bindings() -> Any:
    require()
    import llama_cpp

    # llama.cpp logs every tensor it loads to stderr through the package's logger; keep errors only
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    return llama_cpp


@dataclass(frozen=True)
class Row:
    """One sequence's part of a `decode_rows` call: `tokens` at positions from `start`, logits of the last
    `keep` of them."""

    sequence: int
    tokens: Sequence[int]
    start: int
    keep: int = 1


class LlamaCppModel:
    """A GGUF file loaded in llama.cpp for decoding on the CPU; see the module docstring.

    `context`: KV positions shared by all sequences (a unified cache); `sequences`: how many may be held at
    once (1 for `speculate`; for `serve`, one for speculative answers plus one per continuous-batch row);
    `threads`: llama.cpp's threads (default: torch's, so both engines of one process use the same cores)."""

    def __init__(
        self,
        path: Path,
        *,
        context: int = 8192,
        sequences: int = 1,
        threads: int | None = None,
        batch: int = 512,
        generation_config: Any = None,
    ) -> None:
        ll = _bindings()
        self.ll, self.path = ll, Path(path)
        self.threads = threads or torch.get_num_threads() or os.cpu_count() or 1
        self.context_size, self.max_sequences, self.batch_size = context, sequences, batch
        self.generation_config = generation_config  # stop ids: see generation.prompts.stop_ids
        self._lock = threading.Lock()  # one llama_decode at a time: the context is not thread-safe
        ll.llama_backend_init()
        params = ll.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = ll.llama_model_load_from_file(str(self.path).encode(), params)
        if not self._model:
            raise SmoothieError(f"llama.cpp could not load '{self.path}'; is it a GGUF model file?")
        settings = ll.llama_context_default_params()
        settings.n_ctx, settings.n_batch, settings.n_ubatch = context, batch, batch
        settings.n_seq_max = sequences
        settings.n_threads = settings.n_threads_batch = self.threads
        settings.kv_unified = True  # sequences of any length share the context's positions
        settings.no_perf = True
        self._ctx = ll.llama_init_from_model(self._model, settings)
        if not self._ctx:
            ll.llama_model_free(self._model)
            raise SmoothieError(f"llama.cpp could not make a context of {context} positions for "
                                f"'{self.path}'")  # fmt: skip
        self._memory = ll.llama_get_memory(self._ctx)
        self._batch = ll.llama_batch_init(batch, 0, 1)
        self.vocab_size = int(ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self._model)))
        self.held: dict[int, list[int]] = {}  # sequence → the tokens its KV positions hold
        # sequence 0 answers one request at a time (speculation); the others are claimed by batch rows (with
        # one sequence, a batch of one row claims sequence 0 itself)
        self.free = list(range(sequences - 1, 0, -1)) or [0]

    # ---- what the decoders ask of a target --------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def sequence(self) -> LlamaCppSequence:
        """Sequence 0 for one answer at a time (speculate); what it held before is reused where it matches."""
        return LlamaCppSequence(self, 0)

    def claim(self) -> int:
        """A free sequence id (its positions cleared); `release` gives it back."""
        if not self.free:
            raise RuntimeError(f"all {self.max_sequences} llama.cpp sequences are in use")
        sequence = self.free.pop()
        self.forget(sequence, 0)
        return sequence

    def release(self, sequence: int) -> None:
        self.forget(sequence, 0)
        self.free.append(sequence)

    def forget(self, sequence: int, start: int) -> None:
        """Drop the positions of `sequence` from `start` on."""
        held = self.held.setdefault(sequence, [])
        if start < len(held) or start == 0:
            self.ll.llama_memory_seq_rm(self._memory, sequence, start, -1)
            del held[start:]

    def decode_rows(self, rows: Sequence[Row]) -> list[torch.Tensor]:
        """Run every row's tokens after its sequence's first `start` positions, in as few `llama_decode`
        calls as the batch size allows; each row's float32 logits of its last `keep` tokens [keep, V]."""
        for row in rows:
            self.forget(row.sequence, row.start)
            if row.start != len(self.held[row.sequence]):
                raise RuntimeError(f"sequence {row.sequence} holds {len(self.held[row.sequence])} positions, "
                                   f"not {row.start}")  # fmt: skip
        flat = [(r, i) for r, row in enumerate(rows) for i in range(len(row.tokens))]
        total = len(flat)
        if total + sum(map(len, self.held.values())) > self.context_size:
            raise SmoothieError(
                f"the llama.cpp context holds {self.context_size} positions; this request needs more "
                "(shorter prompts, fewer new tokens, or a larger context)"
            )
        outputs: list[list[torch.Tensor]] = [[] for _ in rows]
        with self._lock:
            for begin in range(0, total, self.batch_size):
                chunk = flat[begin : begin + self.batch_size]
                wanted = self._fill(rows, chunk)
                code = self.ll.llama_decode(self._ctx, self._batch)
                if code != 0:
                    raise RuntimeError(f"llama_decode returned {code}")
                if wanted:
                    pointer = self.ll.llama_get_logits(self._ctx)
                    block = np.ctypeslib.as_array(pointer, shape=(len(wanted), self.vocab_size))
                    logits = torch.from_numpy(block.copy())
                    for j, r in enumerate(wanted):
                        outputs[r].append(logits[j : j + 1])
        for row in rows:
            self.held[row.sequence].extend(row.tokens)
        return [torch.cat(rows_logits) if rows_logits else torch.empty(0) for rows_logits in outputs]

    def length(self, sequence: int) -> int:
        return len(self.held.get(sequence, ()))

    def _fill(self, rows: Sequence[Row], chunk: list[tuple[int, int]]) -> list[int]:
        """Write `chunk` (row, token index) into the batch buffer; the rows whose logits it asks for."""
        batch, wanted = self._batch, []
        batch.n_tokens = len(chunk)
        for slot, (r, i) in enumerate(chunk):
            row = rows[r]
            batch.token[slot] = row.tokens[i]
            batch.pos[slot] = row.start + i
            batch.n_seq_id[slot] = 1
            batch.seq_id[slot][0] = row.sequence
            output = i >= len(row.tokens) - row.keep
            batch.logits[slot] = output
            if output:
                wanted.append(r)
        return wanted

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self.ll.llama_batch_free(self._batch)
            self.ll.llama_free(self._ctx)
            self.ll.llama_model_free(self._model)
            self._ctx = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the bindings may be gone already
            self.close()


class LlamaCppSequence:
    """One KV sequence of a `LlamaCppModel` with `generation.cache.CachedModel`'s interface."""

    def __init__(self, model: LlamaCppModel, sequence: int) -> None:
        self.model, self.sequence = model, sequence
        self.length = 0  # positions of this answer's context (the model may hold more from before)
        self.forwards = 0
        self.seconds = 0.0

    def feed(self, tokens: Sequence[int], keep: int = 1) -> torch.Tensor:
        """Run `tokens` after the context; float32 logits of the last `keep` positions [keep, V]."""
        if not tokens:
            return torch.empty(0)
        start = time.perf_counter()
        tokens = list(tokens)
        # positions a previous answer left here that match these tokens are read again for free; the last
        # `keep` tokens always run (their logits are wanted)
        held = self.model.held.get(self.sequence, [])
        reuse = 0
        while (reuse < len(tokens) - keep and self.length + reuse < len(held)
               and held[self.length + reuse] == tokens[reuse]):  # fmt: skip
            reuse += 1
        row = Row(self.sequence, tokens[reuse:], self.length + reuse, keep)
        logits = self.model.decode_rows([row])[0]
        self.length += len(tokens)
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return logits

    def crop(self, length: int) -> None:
        """Forget every position after `length` (rejected guesses)."""
        if length < self.length:
            self.model.forget(self.sequence, length)
            self.length = length


def gguf_file_kind_check(source: Any, setting: str | None = None) -> None:
    """Fail early (before any loading) when a source has no GGUF file for llama.cpp to read."""
    if source.kind not in ("embedded", "gguf"):
        raise Conflict(
            f"the llama.cpp engine reads a GGUF file and '{source.spec}' is a {source.kind} model; pass a "
            ".gguf file or embedded:NAME, or use the torch engine",
            setting=setting,
        )


def gguf_file(source: Any, progress: Progress = no_progress) -> Path:
    """The GGUF file of a resolved model source (an embedded model's, or a .gguf path); other sources have
    none, and llama.cpp reads nothing else."""
    if source.kind == "embedded":
        from smoothie_cli.models.embedded import embedded_gguf

        return embedded_gguf(source.location, progress)
    gguf_file_kind_check(source)
    return source.path


def load_llama_cpp(source: Any, *, sequences: int = 1, context: int = 8192, progress: Progress = no_progress,
                   path: Path | None = None) -> LlamaCppModel:  # fmt: skip
    """The target on llama.cpp: its GGUF file (`path`, when already found), with the generation config
    beside it for the stop ids."""
    path = path or gguf_file(source, progress)
    config = _generation_config(source)
    return LlamaCppModel(path, context=context, sequences=sequences, generation_config=config)


def _generation_config(source: Any) -> Any:
    """The model's generation config (its end-of-turn ids) where one is at hand without loading weights."""
    try:
        from transformers import GenerationConfig

        from smoothie_cli.models.resolve import tokenizer_location

        location = tokenizer_location(source)
        if location.is_dir() and (location / "generation_config.json").is_file():
            return GenerationConfig.from_pretrained(str(location))
    except (OSError, ValueError):
        return None
    return None
