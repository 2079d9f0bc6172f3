"""The one decode path: a target (and an optional draft that guesses for it) behind one interface.

`speculate`, `eval --draft`, the benchmarks and `serve` all answer through an `Engine`: one answer by
speculative decoding (`answer`), many by batched plain decoding (`answer_batch`), or a continuous batch that
requests join and leave (`open_batch`, the server's). The cautious policy (cautious/decoder.py) is a thin
layer on top: it reads the gate, then asks the engine for an answer or returns the refusal.

The engine owns the seeded-sampling rule: a sampled answer with a seed decodes with a fixed γ
(`SEEDED_GAMMA`), because the adaptive γ follows measured timings, and a different γ takes a different number
of random draws per round — the same seed would give another text on another run. Greedy and unseeded answers
adapt γ, with one scheduler whose measured costs (the machine's) carry over between answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from smoothie_cli.errors import BadValue
from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.logits import LogitsPipeline, new_generator
from smoothie_cli.generation.prompts import Message, chat_prompt, encode, vocab_rows
from smoothie_cli.generation.prompts import stop_ids as model_stop_ids
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.generation.speculative import (
    DraftProposer,
    GammaScheduler,
    Proposer,
    SpeculativeDecoder,
    Stats,
    TokenCallback,
    with_lookup,
)
from smoothie_cli.progress import Progress, no_progress

# γ of a seeded sampled answer (see the module docstring)
SEEDED_GAMMA = 4


@dataclass(frozen=True)
class Decoding:
    """How answers are decoded: sampling, draft tokens per round (None: adaptive, 0: never draft), the
    adaptive γ's upper bound, and prompt-lookup guesses beside the draft's."""

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    gamma: int | None = None
    max_gamma: int = 12
    lookup: bool = False

    def __post_init__(self) -> None:
        if self.gamma is not None and self.gamma < 0:
            raise BadValue(f"must be at least 0 (0: no drafting), not {self.gamma}", setting="gamma")
        if self.max_gamma < 1:
            raise BadValue(f"must be at least 1, not {self.max_gamma}", setting="max_gamma")


def fixed_gamma(pipeline: LogitsPipeline, gamma: int | None) -> int | None:
    """The γ an answer decodes with: the one asked for, else SEEDED_GAMMA for a seeded sampled answer, else
    None (adaptive)."""
    if gamma is not None:
        return gamma
    if not pipeline.greedy and pipeline.sampling.seed is not None:
        return SEEDED_GAMMA
    return None


class Engine:
    """The target and an optional draft, the smoothing processors every answer applies, the stop ids."""

    def __init__(
        self,
        target: Any,
        tokenizer: Any,
        draft: Any | None = None,
        *,
        processors: Sequence[Any] = (),
        stop_ids: set[int] | None = None,
        max_gamma: int = 12,
    ) -> None:
        self.target, self.tokenizer, self.draft = target, tokenizer, draft
        self.processors = list(processors)
        self.stop_ids = stop_ids if stop_ids is not None else model_stop_ids(target, tokenizer)
        self.max_gamma = max_gamma
        self.vocab_size = vocab_rows(target)
        # models of one family may differ in padded rows (151,936 vs 152,064): draft on the shared ids
        self.shared_vocab = min(self.vocab_size, vocab_rows(draft)) if draft is not None else 0
        # the adaptive γ's measured costs are the machine's: one scheduler for every adaptive answer
        self.scheduler = GammaScheduler(4, max_gamma)
        # what the costs depend on besides the machine (models, engine, device): set by whoever loaded
        # them, so they can be kept between runs (generation/costs.py); None: never kept
        self.costs_identity: dict[str, Any] | None = None

    @property
    def device(self) -> str:
        if self.on_llama_cpp:
            return "cpu"
        return str(next(self.target.parameters()).device)

    @property
    def on_llama_cpp(self) -> bool:
        """Whether the target decodes on llama.cpp (models/llama_cpp.py) rather than transformers."""
        from smoothie_cli.models.llama_cpp import LlamaCppModel

        return isinstance(self.target, LlamaCppModel)

    @property
    def context_length(self) -> int | None:
        """The most positions one answer's prompt and tokens may take (None: the model does not say)."""
        if self.on_llama_cpp:
            return self.target.context_size // max(self.target.max_sequences, 1)
        return getattr(getattr(self.target, "config", None), "max_position_embeddings", None)

    # ---- prompts -----------------------------------------------------------------------------------

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        return encode(self.tokenizer, chat_prompt(self.tokenizer, list(messages)))

    def decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    def pipeline(self, sampling: SamplingConfig | None = None, logit_bias: Mapping[int, float] | None = None,
                 ) -> LogitsPipeline:  # fmt: skip
        """The smoothing processors, then a logit bias, then `sampling`'s penalty and warpers."""
        return LogitsPipeline(sampling, self.processors, dict(logit_bias) if logit_bias else None)

    # ---- one answer --------------------------------------------------------------------------------

    def answer(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        *,
        pipeline: LogitsPipeline,
        generator: torch.Generator | None = None,
        gamma: int | None = None,
        lookup: bool = False,
        draft_ids: Sequence[int] | None = None,
        use_draft: bool = True,
        stats: Stats | None = None,
        on_tokens: TokenCallback | None = None,
    ) -> tuple[list[int], Stats]:
        """The answer's ids after `prompt_ids`, by speculative decoding: the draft (if any) guesses from
        `draft_ids` (default: the target's own prompt, where it agrees with the target most), prompt lookup
        too when `lookup` (`use_draft` False: no draft); the target verifies through `pipeline`.
        `generator`: the random draws of this
        answer (default: a new one from the pipeline's seed)."""
        if generator is None:
            generator = new_generator(pipeline.sampling.seed)
        fixed = fixed_gamma(pipeline, gamma)
        decoder = SpeculativeDecoder(self.target, pipeline, self.stop_ids, gamma=fixed,
                                     max_gamma=self.max_gamma, generator=generator)  # fmt: skip
        if fixed is None:
            decoder.scheduler = self.scheduler
        proposer: Proposer | None = None
        if self.draft is not None and use_draft:
            context = list(prompt_ids if draft_ids is None else draft_ids)
            proposer = DraftProposer.over_prompt(CachedModel(self.draft), context, pipeline,
                                                 self.shared_vocab,
                                                 generator=generator, stop_ids=self.stop_ids)  # fmt: skip
        if lookup:
            proposer = with_lookup(proposer)  # type: ignore[arg-type]
        return decoder.decode(list(prompt_ids), proposer, max_new_tokens, stats, on_tokens)

    def warm_up(self) -> None:
        """One short greedy answer, so first-call costs do not land on the first real one (greedy: it takes
        no random draws from anyone's seed). Its 8 tokens also let the scheduler measure a draft round and
        plain rounds, so a draft too slow to pay here is not tried on the first real answer."""
        self.answer(self.prompt_ids([{"role": "user", "content": "Hello"}]), 8, pipeline=self.pipeline())

    def restore_costs(self) -> bool:
        """Start the scheduler from the costs an earlier run kept for these models on this machine
        (generation/costs.py); whether there were any."""
        from smoothie_cli.generation.costs import load_costs, profile_path

        if self.costs_identity is None:
            return False
        costs = load_costs(profile_path(self.costs_identity))
        if costs is None:
            return False
        self.scheduler.use_costs(costs)
        return True

    def keep_costs(self) -> None:
        """Write the scheduler's measured costs for the next run (nothing when no identity was set)."""
        from smoothie_cli.generation.costs import profile_path, save_costs

        if self.costs_identity is not None:
            save_costs(profile_path(self.costs_identity), self.scheduler.costs())

    # ---- many answers ------------------------------------------------------------------------------

    def answer_batch(
        self,
        prompts: Sequence[Sequence[Message]],
        max_new_tokens: int,
        *,
        pipeline: LogitsPipeline,
        batch_size: int = 16,
        progress: Progress = no_progress,
    ) -> list[list[int]]:
        """The answers' ids by batched plain decoding of the target (throughput on a CPU)."""
        if self.on_llama_cpp:
            from smoothie_cli.generation.llama_batch import decode_all

            ids = [self.prompt_ids(m) for m in prompts]
            return decode_all(self.target, ids, max_new_tokens, self.stop_ids, pipeline,
                              new_generator(pipeline.sampling.seed), progress)  # fmt: skip
        from smoothie_cli.generation.batched import ModelGenerator

        generator = ModelGenerator(self.target, self.tokenizer, max_new_tokens, batch_size, pipeline=pipeline)
        return generator.generate_ids([chat_prompt(self.tokenizer, list(m)) for m in prompts], progress)

    def open_batch(self, pipeline: LogitsPipeline) -> Any:
        """An empty continuous batch (generation.continuous) decoding through `pipeline`: rows join and
        leave while it runs; every row shares the pipeline and one random generator from its seed."""
        if self.on_llama_cpp:
            from smoothie_cli.generation.llama_batch import LlamaCppBatch

            return LlamaCppBatch(self.target, pipeline, new_generator(pipeline.sampling.seed))
        from smoothie_cli.generation.continuous import ContinuousBatch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        generator = new_generator(pipeline.sampling.seed, self.device)
        return ContinuousBatch(self.target, pipeline, pad, generator)
