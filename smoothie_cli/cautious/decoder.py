"""Cautious decoding, a thin policy over the generation engine: the gate reader reads each request; a refused
one gets the refusal and never runs the target; the others are answered by the engine (generation/engine.py),
the draft guessing from the target's own chat prompt (`draft_context="chat"`, where it agrees with the
target most) or from the moderation prompt it gated with (`"moderation"`, the seed's way).

Many prompts: gate them all in batches first, then answer the safe ones by speculation one at a time (a
latency tool) or by batched plain decoding of the target (throughput on a CPU) — `strategy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from smoothie_cli.cautious.conversation import Conversation, as_messages, chat_messages, gate_text, last_text
from smoothie_cli.cautious.gate import GateReader
from smoothie_cli.cautious.prompts import MODERATION_INSTRUCTION, SAFE_TAG, TAG_SEPARATOR, Gate, draft_prompt
from smoothie_cli.errors import BadValue, SmoothieError, UnknownChoice
from smoothie_cli.generation.engine import Decoding, Engine
from smoothie_cli.generation.logits import new_generator
from smoothie_cli.generation.prompts import encode
from smoothie_cli.generation.speculative import Stats, TokenCallback
from smoothie_cli.progress import Progress, no_progress

DRAFT_CONTEXTS = ("chat", "moderation")
STRATEGIES = ("auto", "speculative", "batched")
# from this many prompts to answer on a CPU, batched plain decoding beats speculation one at a time in
# prompts/s (benchmarks/bench_speculate.py --input table)
BATCH_FROM = 4


@dataclass(frozen=True)
class PromptSettings:
    """How a request becomes prompts: the target's system message, and what the draft drafts from."""

    system: str | None = None
    draft_context: Literal["chat", "moderation"] = "chat"

    def __post_init__(self) -> None:
        if self.draft_context not in DRAFT_CONTEXTS:
            raise UnknownChoice(
                self.draft_context, DRAFT_CONTEXTS, what="draft context", setting="draft_context"
            )


@dataclass
class Result:
    request: Conversation  # a prompt, or a conversation (chat messages)
    text: str
    gate: Gate
    token_ids: list[int]
    stats: Stats
    strategy: str = "speculative"

    @property
    def prompt(self) -> str:
        """The request's last message (a conversation's) or its prompt."""
        return last_text(self.request)

    def as_dict(self) -> dict[str, Any]:
        turns = {} if isinstance(self.request, str) else {"messages": as_messages(self.request)}
        return {"prompt": self.prompt, **turns, "text": self.text, "gate": self.gate,
                "strategy": self.strategy, **self.stats.as_dict()}  # fmt: skip


@dataclass
class CautiousDecoder:
    """The gate (None: every request is answered), then the engine's answer. One seed is one run: the
    decoder draws every sampled answer from one generator seeded once, so a run repeats exactly."""

    engine: Engine
    gate: GateReader | None = None
    decoding: Decoding = field(default_factory=Decoding)
    prompt: PromptSettings = field(default_factory=PromptSettings)

    def __post_init__(self) -> None:
        self.pipeline = self.engine.pipeline(self.decoding.sampling)
        self.generator = new_generator(self.decoding.sampling.seed)

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    # ---- prompts -----------------------------------------------------------------------------------

    def target_ids(self, prompt: Conversation, system: str | None = None) -> list[int]:
        return self.engine.prompt_ids(chat_messages(prompt, system or self.prompt.system))

    def _draft_ids(self, prompt: Conversation, gate: Gate) -> list[int] | None:
        """What the draft drafts from: None (the target's own prompt) or the moderation prompt, continued
        from the trained "<Safe>\n" (untagged: from a fresh answer)."""
        if self.prompt.draft_context == "chat":
            return None
        instruction = self.gate.instruction if self.gate is not None else MODERATION_INSTRUCTION
        text = self.gate.text(prompt) if self.gate is not None else gate_text(prompt)
        ids = encode(self.tokenizer, draft_prompt(text, instruction))
        if gate in ("safe", "none"):
            ids += encode(self.tokenizer, SAFE_TAG + TAG_SEPARATOR)
        return ids

    # ---- one request -------------------------------------------------------------------------------

    def refuses(self, gate: Gate) -> bool:
        return self.gate is not None and self.gate.refuses(gate)

    def warm_up(self, reuse_costs: bool = False) -> bool:
        """One gate and one short greedy answer, so first-call costs stay out of the first real one (and
        no seeded random draws are taken). `reuse_costs`: where an earlier run kept the scheduler's costs
        for these models on this machine, start from them instead (a one-shot `speculate` saves the
        warm-up's seconds; its first answer then carries the first-call costs). Whether it did."""
        if reuse_costs and self.engine.restore_costs():
            return True
        if self.gate is not None:
            self.gate.read_one("Hello")
        self.engine.warm_up()
        return False

    def read_gate(self, prompt: Conversation) -> tuple[Gate, int]:
        """The gate of one request (a batch of one for the reader) and the reading model's forwards."""
        if self.gate is None:
            return "none", 0
        before = self.gate.forwards
        gate = self.gate.read_one(prompt)
        return gate, self.gate.forwards - before

    def generate(
        self,
        prompt: Conversation,
        max_new_tokens: int = 128,
        system: str | None = None,
        on_tokens: TokenCallback | None = None,
        gate: Gate | None = None,
    ) -> Result:
        """Gate (unless `gate` is already known), then answer. `on_tokens` sees tokens as they are kept.
        `prompt`: a text, or a conversation (the gate reads all of it; the target answers its last turn)."""
        if not last_text(prompt).strip():
            raise SmoothieError("the prompt is empty; give the text to answer")
        if max_new_tokens < 1:
            raise BadValue(f"must be at least 1, not {max_new_tokens}", setting="max_new_tokens")
        start = time.perf_counter()
        stats = Stats()
        if gate is None:
            gate, stats.draft_forwards = self.read_gate(prompt)
        if self.refuses(gate):
            stats.seconds = time.perf_counter() - start
            return Result(prompt, self.gate.refusal if self.gate else "", gate, [], stats)
        tokens, stats = self.engine.answer(
            self.target_ids(prompt, system), max_new_tokens, pipeline=self.pipeline, generator=self.generator,
            gamma=self.decoding.gamma, lookup=self.decoding.lookup, draft_ids=self._draft_ids(prompt, gate),
            stats=stats, on_tokens=on_tokens,
        )  # fmt: skip
        stats.seconds = time.perf_counter() - start
        return Result(prompt, self.engine.decode(tokens), gate, tokens, stats)

    def speculate_ids(
        self, target_ids: Sequence[int], draft_ids: Sequence[int] | None, max_new_tokens: int
    ) -> tuple[list[int], Stats]:
        """Speculation without the gate: the draft continues `draft_ids` (None: no draft), the target
        `target_ids`."""
        return self.engine.answer(target_ids, max_new_tokens, pipeline=self.pipeline,
                                  generator=self.generator,
                                  gamma=self.decoding.gamma, draft_ids=draft_ids,
                                  use_draft=draft_ids is not None)  # fmt: skip

    # ---- many requests -----------------------------------------------------------------------------

    def gate_many(self, prompts: Sequence[Conversation], progress: Progress = no_progress) -> list[Gate]:
        """The gate of every prompt, read in batches (one prefill per batch with a calibrated threshold)."""
        if self.gate is None:
            return ["none"] * len(prompts)
        return self.gate.read(prompts, progress, "gating")

    def answer_many(
        self,
        prompts: Sequence[Conversation],
        max_new_tokens: int = 128,
        *,
        systems: Sequence[str | None] | None = None,
        strategy: str = "auto",
        batch_size: int = 16,
        progress: Progress = no_progress,
        on_result: Callable[[int, Result], None] | None = None,
        on_tokens: Callable[[int], TokenCallback] | None = None,
    ) -> list[Result]:
        """Gate all prompts in batches, then answer the safe ones: by speculation one at a time, or by
        batched plain decoding of the target (`auto`: batched from BATCH_FROM prompts on a CPU)."""
        if strategy not in STRATEGIES:
            raise UnknownChoice(strategy, STRATEGIES, what="strategy", setting="strategy")
        systems = list(systems) if systems is not None else [None] * len(prompts)
        if any(not last_text(p).strip() for p in prompts):
            raise SmoothieError("a prompt is empty; remove it or give its text")
        start = time.perf_counter()
        gates = self.gate_many(prompts, progress)
        gate_seconds = (time.perf_counter() - start) / max(len(prompts), 1)
        answer = [i for i, g in enumerate(gates) if not self.refuses(g)]
        chosen = self.choose_strategy(len(answer), strategy)
        results: dict[int, Result] = {}
        if chosen == "batched":
            results = self._answer_batched(
                prompts, systems, gates, answer, max_new_tokens, batch_size, progress
            )
        for i in range(len(prompts)):  # in input order, so a caller can print results as they come
            if self.refuses(gates[i]):
                refusal = self.gate.refusal if self.gate else ""
                results[i] = Result(prompts[i], refusal, gates[i], [], Stats(), chosen)
            elif chosen == "speculative":
                progress("answering (speculative)", len(results), len(prompts))
                results[i] = self.generate(prompts[i], max_new_tokens, systems[i], gate=gates[i],
                                           on_tokens=on_tokens(i) if on_tokens else None)  # fmt: skip
            results[i].strategy = chosen
            results[i].stats.seconds += gate_seconds
            if on_result:
                on_result(i, results[i])
        progress("answering (speculative)", len(prompts), len(prompts))
        return [results[i] for i in range(len(prompts))]

    def choose_strategy(self, count: int, strategy: str = "auto") -> str:
        if strategy != "auto":
            return strategy
        return "batched" if count >= BATCH_FROM and self.engine.device == "cpu" else "speculative"

    def _answer_batched(
        self,
        prompts: Sequence[Conversation],
        systems: Sequence[str | None],
        gates: Sequence[Gate],
        answer: list[int],
        max_new_tokens: int,
        batch_size: int,
        progress: Progress,
    ) -> dict[int, Result]:
        conversations = [chat_messages(prompts[i], systems[i] or self.prompt.system) for i in answer]
        start = time.perf_counter()
        token_lists = self.engine.answer_batch(conversations, max_new_tokens, pipeline=self.pipeline,
                                               batch_size=batch_size, progress=progress)  # fmt: skip
        each = (time.perf_counter() - start) / max(len(answer), 1)  # batched: the mean share of the time
        return {
            i: Result(prompts[i], self.engine.decode(tokens), gates[i], tokens,
                      Stats(tokens=len(tokens), seconds=each), "batched")
            for i, tokens in zip(answer, token_lists)
        }  # fmt: skip


@dataclass
class CautiousGenerator:
    """The evaluation `Generator` interface over a decoder: all prompts gated in batches, then answered."""

    decoder: CautiousDecoder
    max_new_tokens: int = 128
    strategy: str = "auto"
    name: str = "cautious speculation"

    def generate(self, examples: Sequence[Any], progress: Progress = no_progress) -> list[str]:
        results = self.decoder.answer_many(
            [e.messages() for e in examples], self.max_new_tokens,  # the gate reads the system message too
            strategy=self.strategy, progress=progress,
        )  # fmt: skip
        return [r.text for r in results]
