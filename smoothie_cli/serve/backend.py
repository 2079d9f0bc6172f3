"""The only place the server touches models: gate a batch, stream one answer, run a continuous batch.

A thin adapter over the generation engine (`smoothie_cli.generation`) and the cautious gate
(`smoothie_cli.cautious`); the scheduler sees three calls and plain data, so a new engine is a change here.
Every answer goes through one `LogitsPipeline` per request: the server's smoothing processors, then the
request's `logit_bias`, temperature and top-p.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smoothie_cli.cautious.decoder import CautiousDecoder
from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL, Gate
from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.logits import LogitsPipeline, new_generator
from smoothie_cli.generation.prompts import Message, chat_prompt, encode, stop_ids, vocab_rows
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.generation.speculative import (
    DraftProposer,
    Proposer,
    SpeculativeDecoder,
    with_lookup,
)

# called with the tokens an answer gained; returning False stops that answer (a stop string, a client gone)
OnTokens = Callable[[list[int]], bool]
# γ for a seeded sampled answer: adaptive γ follows measured timings, which would change how many random
# draws a round takes and so the text; a fixed γ keeps a seed's answer the same on every run
SEEDED_GAMMA = 4


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
    def gate_text(self) -> str:
        """What the draft's gate reads: the last user message (the Alpaca prompt holds one input)."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

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
    """Target, optional draft (and its gate reader), smoothing processors; built once at server start."""

    target: Any
    tokenizer: Any
    draft: Any | None = None
    model_id: str = "smoothie"
    gate: bool = True
    gate_threshold: float | None = None  # None: the draft's tag is read greedily
    gate_model: Any | None = None  # a float32 copy that reads an int8 draft's tag
    gate_probe: Any | None = None  # the probe the threshold applies to (probe.py), else the tag margin
    on_untagged: str = "continue"
    refusal: str = DEFAULT_REFUSAL
    instruction: str | None = None
    processors: Sequence[Any] = ()  # smoothing (TokenScaleLogitsProcessor), applied to every request
    lookup: bool = True  # prompt lookup guesses next to the draft's
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stop_ids = stop_ids(self.target, self.tokenizer)
        self._gamma: Any = None  # the adaptive γ scheduler shared by speculative answers
        self.vocab_size = vocab_rows(self.target)
        self.shared_vocab = min(self.vocab_size, vocab_rows(self.draft)) if self.draft is not None else 0
        # the cautious decoder reads gates in batches (shared instruction prefix, calibrated threshold)
        self._gater = CautiousDecoder(
            self.target,
            self.tokenizer,
            self.draft,
            instruction=self.instruction,
            refusal=self.refusal,
            on_untagged=self.on_untagged,
            gate=self.gate,
            gate_threshold=self.gate_threshold,
            gate_model=self.gate_model,
            gate_probe=self.gate_probe,
        )

    @property
    def device(self) -> str:
        return str(next(self.target.parameters()).device)

    @property
    def gate_reading(self) -> str:
        """How this server reads the gate, said in every response."""
        if self.draft is None:
            return "off: no draft"
        if not self.gate:
            return "off: --no-gate"
        reader = "float32 copy of the draft" if self.gate_model is not None else "the draft"
        if self.gate_threshold is None:
            return f"greedy tag, read by {reader}"
        score = "probe log-odds" if self.gate_probe is not None else "margin"
        return f"calibrated {score} > {self.gate_threshold:.4g}, read by {reader}"

    # ---- prompts ------------------------------------------------------------------------------------

    def prompt_ids(self, request: Request) -> list[int]:
        return encode(self.tokenizer, chat_prompt(self.tokenizer, list(request.messages)))

    def count_tokens(self, text: str) -> int:
        return len(encode(self.tokenizer, text))

    def decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    # ---- the three calls --------------------------------------------------------------------------

    def gate_batch(self, requests: Sequence[Request]) -> list[tuple[Gate, bool]]:
        """(gate, refused) per request, read in one batch by the draft (or its float32 reader)."""
        gates = self._gater.gate_many([r.gate_text for r in requests])
        return [(g, self._gater.refuses(g)) for g in gates]

    def stream(self, request: Request, on_tokens: OnTokens) -> list[int]:
        """One answer by speculative decoding (the draft and prompt lookup guess, the target verifies);
        `on_tokens` sees each round's kept tokens and may stop it."""
        pipeline = self._pipeline(request)
        seeded = not pipeline.greedy and request.seed is not None
        generator = new_generator(request.seed)
        engine = SpeculativeDecoder(
            self.target, pipeline, self.stop_ids, generator=generator, gamma=SEEDED_GAMMA if seeded else None
        )
        if not seeded:  # the γ scheduler's measured costs are the machine's: one set for every answer
            self._gamma = self._gamma or engine.scheduler
            engine.scheduler = self._gamma
        ids = self.prompt_ids(request)
        proposer: Proposer | None = None
        if self.draft is not None:
            # the draft drafts from the target's own chat prompt, where it agrees with the target most
            proposer = DraftProposer.over_prompt(
                CachedModel(self.draft),
                ids,
                pipeline,
                self.shared_vocab,
                generator=generator,
                stop_ids=self.stop_ids,
            )
        if self.lookup:
            proposer = with_lookup(proposer)  # type: ignore[arg-type]
        tokens, _ = engine.decode(
            ids, proposer, request.max_tokens, on_tokens=lambda new: on_tokens(list(new))
        )
        return tokens

    def open_batch(self, request: Request) -> RunningBatch:
        """An empty continuous batch for requests of `request`'s `batch_key` (one logits pipeline)."""
        from smoothie_cli.generation.continuous import ContinuousBatch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = ContinuousBatch(
            self.target, self._pipeline(request), pad, new_generator(request.seed, self.device)
        )
        return RunningBatch(self, batch)

    def _pipeline(self, request: Request) -> LogitsPipeline:
        sampling = SamplingConfig(request.temperature, request.top_p, seed=request.seed)
        return LogitsPipeline(sampling, self.processors, request.logit_bias or None)

    def warm_up(self) -> None:
        """One short answer and one gate, so first-call costs do not land on the first client."""
        request = Request([{"role": "user", "content": "Hello"}], max_tokens=2)
        if self.draft is not None and self.gate:
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
