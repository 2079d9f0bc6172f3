"""The only place the server touches models: gate a batch, stream one answer, run a continuous batch.

A thin adapter over the generation engine (`generation/engine.py`, the decode path `speculate` and `eval`
use too) and the gate reader (`cautious/gate.py`); the scheduler sees three calls and plain data, so a new
engine is a change here. Every answer goes through one `LogitsPipeline` per request: the server's smoothing
processors, then the request's `logit_bias`, temperature and top-p. The engine owns the seeded-sampling
rule (a seeded sampled answer decodes with a fixed γ, so a seed gives the same text on every run).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smoothie_cli.cautious.gate import GateReader
from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL, Gate
from smoothie_cli.generation.engine import Engine
from smoothie_cli.generation.logits import LogitsPipeline, new_generator
from smoothie_cli.generation.prompts import Message, encode
from smoothie_cli.generation.sampling import SamplingConfig

# called with the tokens an answer gained; returning False stops that answer (a stop string, a client gone)
OnTokens = Callable[[list[int]], bool]


@dataclass(frozen=True)
class Request:
    """One chat completion as the models see it."""

    messages: Sequence[Message]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)

    @property
    def batch_key(self) -> Hashable | None:
        """Requests with equal keys can be decoded in one batch (one pipeline); None: decode alone.

        A seeded sampled answer must not depend on what else is in the batch (the rows share one random
        generator), so it never shares one."""
        if self.temperature > 0 and self.seed is not None:
            return None
        sampling = (0.0, 1.0) if self.temperature == 0 else (self.temperature, self.top_p)
        return (sampling, tuple(sorted(self.logit_bias.items())))


@dataclass
class Backend:
    """The engine (target, optional draft, smoothing processors) and the gate reader (None: no gate);
    built once at server start."""

    engine: Engine
    gate: GateReader | None = None
    model_id: str = "smoothie"
    lookup: bool = True  # prompt lookup guesses next to the draft's
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def refusal(self) -> str:
        return self.gate.refusal if self.gate is not None else DEFAULT_REFUSAL

    @property
    def gate_reading(self) -> str:
        """How this server reads the gate, said in every response."""
        if self.engine.draft is None:
            return "off: no draft"
        if self.gate is None:
            return "off: --no-gate"
        return self.gate.summary()

    # ---- prompts ------------------------------------------------------------------------------------

    def prompt_ids(self, request: Request) -> list[int]:
        return self.engine.prompt_ids(request.messages)

    def count_tokens(self, text: str) -> int:
        return len(encode(self.engine.tokenizer, text))

    def decode(self, tokens: Sequence[int]) -> str:
        return self.engine.decode(tokens)

    # ---- the three calls --------------------------------------------------------------------------

    def gate_batch(self, requests: Sequence[Request]) -> list[tuple[Gate, bool]]:
        """(gate, refused) per request, read in one batch by the gate reader."""
        if self.gate is None:
            return [("none", False) for _ in requests]
        gates = self.gate.read([r.messages for r in requests])
        return [(g, self.gate.refuses(g)) for g in gates]

    def stream(self, request: Request, on_tokens: OnTokens) -> list[int]:
        """One answer by speculative decoding (the draft and prompt lookup guess, the target verifies);
        `on_tokens` sees each round's kept tokens and may stop it."""
        tokens, _ = self.engine.answer(
            self.prompt_ids(request), request.max_tokens, pipeline=self._pipeline(request),
            generator=new_generator(request.seed), lookup=self.lookup,
            on_tokens=lambda new: on_tokens(list(new)),
        )  # fmt: skip
        return tokens

    def open_batch(self, request: Request) -> RunningBatch:
        """An empty continuous batch for requests of `request`'s `batch_key` (one logits pipeline)."""
        return RunningBatch(self, self.engine.open_batch(self._pipeline(request)))

    def _pipeline(self, request: Request) -> LogitsPipeline:
        sampling = SamplingConfig(request.temperature, request.top_p, seed=request.seed)
        return self.engine.pipeline(sampling, request.logit_bias)

    def warm_up(self) -> None:
        """One short answer and one gate, so first-call costs do not land on the first client."""
        request = Request([{"role": "user", "content": "Hello"}], max_tokens=2)
        self.gate_batch([request])
        self.stream(request, lambda _: True)


class RunningBatch:
    """Batched plain decoding of the target that requests join while it runs and leave when done
    (`generation.continuous`); rows are named by the scheduler's keys."""

    def __init__(self, backend: Backend, batch: Any) -> None:
        self.backend, self.batch = backend, batch

    def __len__(self) -> int:
        return len(self.batch)

    def join(
        self, requests: Sequence[Request], keys: Sequence[Hashable], answered: Sequence[Sequence[int]] = ()
    ) -> dict[Hashable, int]:
        """Prefill the requests' prompts (followed by the tokens already `answered`, for an answer that
        continues here) and add them; {key: next token}."""
        answered = list(answered) or [[] for _ in requests]
        prompts = [self.backend.prompt_ids(r) + list(a) for r, a in zip(requests, answered)]
        return self.batch.admit(prompts, keys)

    def step(self) -> dict[Hashable, int]:
        """One token for every row; {key: token}."""
        return self.batch.step()

    def leave(self, keys: Sequence[Hashable]) -> None:
        self.batch.drop(keys)
