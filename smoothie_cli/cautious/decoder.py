"""Cautious decoding: the draft reads the moderation prompt and gates the request; after `<Safe>` it drafts
for the target through the generation engine, from the target's own chat prompt (`draft_context="chat"`,
where it agrees with the target most) or from the moderation prompt it gated with (`"moderation"`, the seed's
way). `<Toc>` returns the refusal and never runs the target.

Many prompts: gate them all in batches first, then answer the safe ones by speculation one at a time (a
latency tool) or by batched plain decoding of the target (throughput on a CPU) — `strategy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from smoothie_cli.cautious.gate import classify, margin_of, tag_tokens
from smoothie_cli.cautious.probe import capture
from smoothie_cli.cautious.prompts import (
    DEFAULT_REFUSAL,
    SAFE_TAG,
    TAG_SEPARATOR,
    Gate,
    draft_prompt,
    instruction_prefix,
    read_tag,
    template_tail,
)
from smoothie_cli.errors import SmoothieError
from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.logits import LogitsPipeline, new_generator
from smoothie_cli.generation.prompts import chat_prompt, encode, messages_for, vocab_rows
from smoothie_cli.generation.prompts import stop_ids as model_stop_ids
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.generation.speculative import (
    DraftProposer,
    Proposer,
    SpeculativeDecoder,
    Stats,
    TokenCallback,
    with_lookup,
)
from smoothie_cli.progress import Progress, no_progress

GATE_MAX_TOKENS = 8  # the tags are 3–4 tokens in Qwen's vocabulary; more means the draft is not tagging
DRAFT_CONTEXTS = ("chat", "moderation")
STRATEGIES = ("auto", "speculative", "batched")
# from this many prompts to answer on a CPU, batched plain decoding beats speculation one at a time in
# prompts/s (benchmarks/bench_speculate.py --input table)
BATCH_FROM = 4


@dataclass
class Result:
    prompt: str
    text: str
    gate: Gate
    token_ids: list[int]
    stats: Stats
    strategy: str = "speculative"

    def as_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "text": self.text, "gate": self.gate, "strategy": self.strategy,
                **self.stats.as_dict()}  # fmt: skip


class CautiousDecoder:
    """The draft gates each request by its tag, then drafts for the target; `draft=None` is the target
    alone (with prompt lookup when `lookup`)."""

    def __init__(
        self,
        target: Any,
        tokenizer: Any,
        draft: Any | None = None,
        *,
        instruction: str | None = None,
        refusal: str = DEFAULT_REFUSAL,
        on_untagged: str = "continue",
        gamma: int | None = None,
        max_gamma: int = 12,
        sampling: SamplingConfig | None = None,
        system: str | None = None,
        stop_ids: set[int] | None = None,
        gate: bool = True,
        gate_threshold: float | None = None,
        gate_model: Any | None = None,
        gate_probe: Any | None = None,
        processors: Sequence[Any] = (),
        logit_bias: dict[int, float] | None = None,
        draft_context: str = "chat",
        lookup: bool = False,
    ) -> None:
        if gamma is not None and gamma < 0:
            raise SmoothieError(f"--gamma must be at least 0 (0: no drafting), not {gamma}")
        if on_untagged not in ("continue", "refuse"):
            raise SmoothieError(f"--on-untagged must be continue or refuse, not '{on_untagged}'")
        if draft_context not in DRAFT_CONTEXTS:
            raise SmoothieError(f"--draft-context must be chat or moderation, not '{draft_context}'")
        self.target, self.tokenizer, self.draft = target, tokenizer, draft
        self.instruction, self.refusal, self.on_untagged = instruction, refusal, on_untagged
        self.system, self.gate, self.draft_context, self.lookup = system, gate, draft_context, lookup
        # None: the tag is read greedily; a number: toxic when the tag margin is above it (gate.py)
        self.gate_threshold = gate_threshold
        # the model that reads the tag when not the draft itself (a full-precision copy of an int8 draft)
        self.gate_model = gate_model
        # with a threshold: the threshold applies to this probe's log-odds instead of the tag margin
        self.gate_probe = gate_probe
        self.pipeline = LogitsPipeline(sampling, processors, logit_bias)
        self.stop_ids = stop_ids if stop_ids is not None else model_stop_ids(target, tokenizer)
        self.generator = new_generator(self.pipeline.sampling.seed)
        self.engine = SpeculativeDecoder(target, self.pipeline, self.stop_ids, gamma=gamma,
                                         max_gamma=max_gamma, generator=self.generator)  # fmt: skip
        # models of one family may differ in padded rows (151,936 vs 152,064): draft on the shared ids
        self.shared_vocab = min(vocab_rows(target), vocab_rows(draft)) if draft is not None else 0
        # the moderation instruction's ids and KV cache, per model that reads it
        self._prefixes: dict[int, tuple[list[int], CachedModel]] = {}

    # ---- prompts -----------------------------------------------------------------------------------

    def target_ids(self, prompt: str, system: str | None = None) -> list[int]:
        return encode(
            self.tokenizer, chat_prompt(self.tokenizer, messages_for(prompt, system or self.system))
        )

    def _draft_text(self, prompt: str) -> str:
        return draft_prompt(prompt) if self.instruction is None else draft_prompt(prompt, self.instruction)

    def draft_ids(self, prompt: str) -> list[int]:
        return encode(self.tokenizer, self._draft_text(prompt))

    def _instruction_cache(self, model: Any) -> tuple[list[int], CachedModel | None]:
        """The moderation instruction's ids and `model`'s KV cache over them, computed on first use."""
        if self.tokenizer is not None and id(model) not in self._prefixes:
            prefix = instruction_prefix(self.tokenizer, *([self.instruction] if self.instruction else []))
            shared = CachedModel(model)
            shared.feed(prefix)
            self._prefixes[id(model)] = (prefix, shared)
        return self._prefixes.get(id(model), ([], None))

    def _moderation_context(self, model: Any, ids: list[int]) -> CachedModel:
        """`model` having read the moderation prompt `ids` but its last token. The instruction that opens
        every draft prompt (~100 tokens) is computed once per model and copied."""
        prefix, shared = self._instruction_cache(model)
        # a prompt whose tokens do not open with the prefix's (a merge across the boundary) shares nothing
        if shared is None or len(ids) <= len(prefix) or ids[: len(prefix)] != prefix:
            cached = CachedModel(model)
            cached.feed(ids[:-1])
            return cached
        cached = shared.fork()
        cached.feed(ids[len(prefix) : -1])
        return cached

    # ---- one request -------------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 128,
        system: str | None = None,
        on_tokens: TokenCallback | None = None,
        gate: Gate | None = None,
    ) -> Result:
        """Gate (unless `gate` is already known), then answer. `on_tokens` sees tokens as they are kept."""
        if not prompt.strip():
            raise SmoothieError("the prompt is empty; give the text to answer")
        if max_new_tokens < 1:
            raise SmoothieError(f"--max-new-tokens must be at least 1, not {max_new_tokens}")
        start = time.perf_counter()
        stats = Stats()
        proposer: Proposer | None = None
        moderation: CachedModel | None = None
        if self.draft is not None:
            if gate is None:
                gate, moderation, stats.draft_forwards = self.read_gate(prompt)
            if self.refuses(gate):
                stats.seconds = time.perf_counter() - start
                return Result(prompt, self.refusal, gate, [], stats)
            proposer = self._draft_proposer(prompt, system, gate, moderation)
        target_ids = self.target_ids(prompt, system)
        if self.lookup:
            proposer = with_lookup(proposer)  # type: ignore[arg-type]
        tokens, stats = self.engine.decode(target_ids, proposer, max_new_tokens, stats, on_tokens)
        stats.seconds = time.perf_counter() - start
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Result(prompt, text, gate or "none", tokens, stats)

    def speculate_ids(
        self, target_ids: Sequence[int], draft_ids: Sequence[int] | None, max_new_tokens: int
    ) -> tuple[list[int], Stats]:
        """Speculation without the gate: the draft continues `draft_ids`, the target `target_ids`."""
        proposer = None
        if self.draft is not None and draft_ids is not None:
            proposer = self._new_draft(CachedModel(self.draft), list(draft_ids))
        return self.engine.decode(list(target_ids), proposer, max_new_tokens)

    def refuses(self, gate: Gate) -> bool:
        return gate == "toxic" or (gate == "untagged" and self.on_untagged == "refuse")

    def read_gate(self, prompt: str) -> tuple[Gate, CachedModel | None, int]:
        """The gate for one prompt, the draft's moderation context when the draft read it itself (to draft
        from), and the forwards it took. With a threshold: the calibrated tag margin, one forward; else
        greedy draft tokens until they spell a tag (or cannot)."""
        if not self.gate:
            return "none", None, 0
        ids = self.draft_ids(prompt)
        reader_model = self.gate_model if self.gate_model is not None else self.draft
        if self.gate_threshold is not None:
            reader, score = self._calibrated_score(reader_model, ids)
            gate: Gate = "toxic" if score > self.gate_threshold else "safe"
        else:
            reader = self._moderation_context(reader_model, ids)
            length = reader.length
            gate = self._greedy_tag(reader, ids[-1])
            reader.crop(length)
        own = reader if self.gate_model is None else None
        return gate, own, reader.forwards

    def _calibrated_score(self, model: Any, ids: list[int]) -> tuple[CachedModel, float]:
        """The moderation context of `ids` on `model` (cropped back to all but the last token) and what the
        threshold applies to: the probe's log-odds from the hidden states that prefill wrote (the features
        of probe_features), or the tag margin at the token where the tags part."""
        tags = tag_tokens(self.tokenizer)
        probe = self.gate_probe
        prefix, _ = self._instruction_cache(model)  # before capturing: its forward is not this prompt's
        with capture(model, probe.spec.layers) if probe is not None else nullcontext({}) as seen:
            reader = self._moderation_context(model, ids)
            length = reader.length
            logits = reader.feed([ids[-1], *tags.shared])[-1]
        reader.crop(length)
        if probe is None:
            return reader, margin_of(logits, tags)
        import torch

        span = max(len(ids) - len(prefix), 0) + len(tags.shared)
        tail = template_tail(self.tokenizer, ids) + len(tags.shared)
        states = {n: torch.cat([s[0] for s in seen[n]]) for n in probe.spec.layers}
        features = probe.spec.features(states, max(span, 1), tail)
        return reader, float(probe.probe(features.unsqueeze(0).cpu())[0])

    def _greedy_tag(self, reader: CachedModel, last: int) -> Gate:
        pending, written = [last], []
        for _ in range(GATE_MAX_TOKENS):
            token = int(reader.feed(pending)[-1].argmax())
            written.append(token)
            pending = [token]
            tag = read_tag(self.tokenizer.decode(written))
            if tag is not None:
                return tag
        return "untagged"

    def _draft_proposer(
        self, prompt: str, system: str | None, gate: Gate, moderation: CachedModel | None
    ) -> DraftProposer:
        if self.draft_context == "chat":
            return self._new_draft(CachedModel(self.draft), self.target_ids(prompt, system))
        ids = self.draft_ids(prompt)
        context = moderation or self._moderation_context(self.draft, ids)
        # continue the answer from the trained "<Safe>\n" (or, untagged, from a fresh answer)
        pending = [ids[-1]]
        if gate in ("safe", "none"):
            pending += encode(self.tokenizer, SAFE_TAG + TAG_SEPARATOR)
        return DraftProposer(
            context, pending, self.pipeline, self.shared_vocab, self.generator, self.stop_ids
        )

    def _new_draft(self, cached: CachedModel, prompt_ids: list[int]) -> DraftProposer:
        return DraftProposer.over_prompt(cached, prompt_ids, self.pipeline, self.shared_vocab,
                                         generator=self.generator, stop_ids=self.stop_ids)  # fmt: skip

    # ---- many requests -----------------------------------------------------------------------------

    def gate_many(self, prompts: Sequence[str], progress: Progress = no_progress) -> list[Gate]:
        """The gate of every prompt, read in batches (one prefill per batch with a calibrated threshold)."""
        if self.draft is None or not self.gate:
            return ["none"] * len(prompts)
        reader = self.gate_model if self.gate_model is not None else self.draft
        kwargs = {"instruction": self.instruction} if self.instruction else {}
        return classify(reader, self.tokenizer, prompts, threshold=self.gate_threshold, probe=self.gate_probe,
                        progress=progress, description="gating", **kwargs)  # fmt: skip

    def answer_many(
        self,
        prompts: Sequence[str],
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
            raise SmoothieError(f"--strategy must be one of {', '.join(STRATEGIES)}, not '{strategy}'")
        systems = list(systems) if systems is not None else [None] * len(prompts)
        if any(not p.strip() for p in prompts):
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
                results[i] = Result(prompts[i], self.refusal, gates[i], [], Stats(), chosen)
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
        device = str(next(self.target.parameters()).device)
        return "batched" if count >= BATCH_FROM and device == "cpu" else "speculative"

    def _answer_batched(
        self,
        prompts: Sequence[str],
        systems: Sequence[str | None],
        gates: Sequence[Gate],
        answer: list[int],
        max_new_tokens: int,
        batch_size: int,
        progress: Progress,
    ) -> dict[int, Result]:
        from smoothie_cli.generation.batched import ModelGenerator

        generator = ModelGenerator(
            self.target, self.tokenizer, max_new_tokens, batch_size, pipeline=self.pipeline
        )
        texts = [
            chat_prompt(self.tokenizer, messages_for(prompts[i], systems[i] or self.system)) for i in answer
        ]
        start = time.perf_counter()
        token_lists = generator.generate_ids(texts, progress)
        each = (time.perf_counter() - start) / max(len(answer), 1)  # batched: the mean share of the time
        return {
            i: Result(
                prompts[i],
                self.tokenizer.decode(tokens, skip_special_tokens=True),
                gates[i],
                tokens,
                Stats(tokens=len(tokens), seconds=each),
                "batched",
            )
            for i, tokens in zip(answer, token_lists)
        }


@dataclass
class CautiousGenerator:
    """The evaluation `Generator` interface over a decoder: all prompts gated in batches, then answered."""

    decoder: CautiousDecoder
    max_new_tokens: int = 128
    strategy: str = "auto"
    name: str = "cautious speculation"

    def generate(self, examples: Sequence[Any], progress: Progress = no_progress) -> list[str]:
        results = self.decoder.answer_many(
            [e.prompt for e in examples], self.max_new_tokens, systems=[e.system for e in examples],
            strategy=self.strategy, progress=progress,
        )  # fmt: skip
        return [r.text for r in results]
