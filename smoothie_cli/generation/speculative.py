"""Speculative decoding, split as transformers splits assisted generation: proposers, a verifier, a scheduler.

- A **proposer** guesses the next tokens: `DraftProposer` (a small model with its own KV cache over its own
  prompt), `PromptLookupProposer` (no model: the continuation of the longest recent n-gram that already occurs
  in the prompt or the answer), `CombinedProposer` (lookup when it matches, the draft otherwise).
- The **verifier** runs the target once over the guesses: greedy keeps the longest prefix the target's argmax
  agrees with plus the target's own next token, so the text equals target-only greedy decoding; sampling uses
  the rejection rule of Leviathan et al. / Chen et al., so every token is distributed as the target's.
- The **scheduler** picks γ (tokens to guess) each round from the measured acceptance and costs, γ = 0
  (plain decoding) included, and probes again now and then, so speculation is not slower than the target
  alone when guessing stops paying.

Every path shares one `LogitsPipeline`, so smoothing scales, logit bias and sampling warpers apply to guesses
and verification alike. transformers' assisted generation feeds the draft the target's exact ids; here each
proposer keeps its own context, which is what lets a draft read a different (moderation) prompt.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from smoothie_cli.generation.cache import CachedModel, open_sequence
from smoothie_cli.generation.logits import LogitsPipeline, new_generator

# called with the tokens each round adds to the answer; returning False stops decoding (a client went away)
TokenCallback = Callable[[list[int]], "bool | None"]


@dataclass
class Stats:
    tokens: int = 0
    proposed: int = 0
    accepted: int = 0
    target_forwards: int = 0
    draft_forwards: int = 0
    seconds: float = 0.0
    gammas: list[int] = field(default_factory=list)
    by_source: dict[str, list[int]] = field(default_factory=dict)  # source → [proposed, accepted]

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.proposed if self.proposed else None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def count(self, source: str, proposed: int, accepted: int) -> None:
        self.proposed += proposed
        self.accepted += accepted
        totals = self.by_source.setdefault(source, [0, 0])
        totals[0] += proposed
        totals[1] += accepted

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "seconds": round(self.seconds, 4),
            "tokens_per_s": round(self.tokens_per_s, 3),
            "acceptance_rate": None if self.acceptance_rate is None else round(self.acceptance_rate, 4),
            "proposed": self.proposed,
            "accepted": self.accepted,
            "target_forwards": self.target_forwards,
            "draft_forwards": self.draft_forwards,
            "mean_gamma": round(sum(self.gammas) / len(self.gammas), 2) if self.gammas else None,
            "plain_rounds": sum(1 for g in self.gammas if g == 0),
            "by_source": {k: {"proposed": p, "accepted": a} for k, (p, a) in self.by_source.items()},
        }


@dataclass
class Proposal:
    """Guessed tokens; `probs` [len, V] are the proposer's distributions when it sampled them (None: the
    guess is deterministic, a point mass on each token)."""

    tokens: list[int]
    probs: torch.Tensor | None = None
    source: str = "draft"
    catch_up_s: float = 0.0  # reading committed tokens first (the prompt, or after plain rounds): not a guess


class Proposer(Protocol):
    """Guesses continuations of the answer; told what the target kept after every round."""

    def options(self, context: Sequence[int]) -> dict[str, int]:
        """The sources that could guess now, each with the most tokens it can guess."""

    def propose(self, context: Sequence[int], gamma: int, source: str) -> Proposal:
        """Up to `gamma` tokens from `source` after `context` (the target's prompt + the answer so far)."""

    def commit(self, new_tokens: Sequence[int]) -> None:
        """The tokens this round added to the answer."""

    @property
    def forwards(self) -> int: ...


UNBOUNDED = 1 << 30


class DraftProposer:
    """A draft model over its own prompt (the target's chat prompt, or a different one), with its own cache.

    The cache holds the draft's prompt, the committed answer, and the guesses of the last round (kept where
    the target agreed, cropped where it did not); `pending` are committed tokens the draft has not read yet.
    """

    def __init__(
        self,
        model: CachedModel,
        pending: Sequence[int],
        pipeline: LogitsPipeline,
        vocab: int,
        generator: torch.Generator | None = None,
        stop_ids: set[int] | frozenset[int] = frozenset(),
    ) -> None:
        self.model, self.pipeline, self.vocab = model, pipeline, vocab
        self.pending = list(pending)  # read by the next forward
        self.guessed: list[int] = []  # fed after the committed tokens, not yet committed
        self.generator = generator
        self.stop_ids = stop_ids
        self.enabled = True

    @classmethod
    def over_prompt(cls, model: Any, prompt_ids: Sequence[int], pipeline: LogitsPipeline, vocab: int,
                    **kwargs: Any) -> DraftProposer:  # fmt: skip
        """A draft over `prompt_ids`, read with its first guess (never, when the scheduler never drafts)."""
        cached = model if isinstance(model, CachedModel) else CachedModel(model)
        return cls(cached, prompt_ids, pipeline, vocab, **kwargs)

    @property
    def forwards(self) -> int:
        return self.model.forwards

    def options(self, context: Sequence[int]) -> dict[str, int]:
        return {"draft": UNBOUNDED} if self.enabled else {}

    def propose(self, context: Sequence[int], gamma: int, source: str = "draft") -> Proposal:
        tokens: list[int] = []
        probs: list[torch.Tensor] = []
        catch_up = self.model.prepare()  # one-off set-up is not a guess's cost either
        if len(self.pending) > 1:  # the prompt, or what plain rounds added: read it apart from the guesses
            before = self.model.seconds
            self.model.feed(self.pending[:-1])
            catch_up, self.pending = catch_up + self.model.seconds - before, self.pending[-1:]
        step, seen = self.pending, list(context)
        for _ in range(gamma):
            logits = self.model.feed(step)[-1:, : self.vocab]
            if self.pipeline.greedy:
                token = int(self.pipeline.shaped([seen], logits).argmax())
            else:
                q = self.pipeline.probabilities([seen], logits)
                token = int(torch.multinomial(q, 1, generator=self.generator))
                probs.append(q[0])
            tokens.append(token)
            step, seen = [token], [*seen, token]
            if token in self.stop_ids:
                break
        self.pending, self.guessed = [], tokens[:-1]  # the last guess is never fed
        return Proposal(tokens, torch.stack(probs) if probs else None, "draft", catch_up)

    def commit(self, new_tokens: Sequence[int]) -> None:
        kept = 0
        while kept < min(len(self.guessed), len(new_tokens)) and self.guessed[kept] == new_tokens[kept]:
            kept += 1
        self.model.crop(self.model.length - len(self.guessed) + kept)
        self.pending += list(new_tokens[kept:])
        self.guessed = []
        if any(t >= self.vocab for t in new_tokens):
            # a target-only id (a padding row past the draft's vocabulary): the draft cannot read it, so the
            # rest of this answer is the target's alone
            self.enabled = False


class PromptLookupProposer:
    """No model: if the last n ids (n from `max_ngram` down to `min_ngram`) occurred before in the prompt or
    the answer, guess what followed their most recent earlier occurrence. Code edits, quotes and summaries
    copy their input; this guesses those copies for free (prompt lookup decoding, Saxena 2023)."""

    forwards = 0

    def __init__(self, max_ngram: int = 4, min_ngram: int = 2, max_tokens: int = 10) -> None:
        self.max_ngram, self.min_ngram, self.max_tokens = max_ngram, min_ngram, max_tokens

    def continuation(self, context: Sequence[int]) -> list[int]:
        ids = list(context)
        for n in range(min(self.max_ngram, len(ids) - 1), self.min_ngram - 1, -1):
            tail = ids[-n:]
            for start in range(len(ids) - n - 1, -1, -1):  # most recent first
                if ids[start : start + n] == tail:
                    return ids[start + n : start + n + self.max_tokens]
        return []

    def options(self, context: Sequence[int]) -> dict[str, int]:
        found = len(self.continuation(context))
        return {"lookup": found} if found else {}

    def propose(self, context: Sequence[int], gamma: int, source: str = "lookup") -> Proposal:
        return Proposal(self.continuation(context)[:gamma], None, "lookup")

    def commit(self, new_tokens: Sequence[int]) -> None:
        pass


class CombinedProposer:
    """Prompt lookup when it matches, the draft otherwise; both are told what the target kept."""

    def __init__(self, lookup: PromptLookupProposer, draft: DraftProposer) -> None:
        self.lookup, self.draft = lookup, draft

    @property
    def forwards(self) -> int:
        return self.draft.forwards

    def options(self, context: Sequence[int]) -> dict[str, int]:
        return self.lookup.options(context) | self.draft.options(context)

    def propose(self, context: Sequence[int], gamma: int, source: str) -> Proposal:
        return (self.lookup if source == "lookup" else self.draft).propose(context, gamma, source)

    def commit(self, new_tokens: Sequence[int]) -> None:
        self.lookup.commit(new_tokens)
        self.draft.commit(new_tokens)


def with_lookup(proposer: DraftProposer | None) -> PromptLookupProposer | CombinedProposer:
    """Prompt lookup alone (matching 2-grams and up), or in front of a draft (3-grams and up: shorter
    matches are mostly chance in open text, where the draft guesses better)."""
    if proposer is None:
        return PromptLookupProposer()
    return CombinedProposer(PromptLookupProposer(min_ngram=3), proposer)


# ---- the verifier --------------------------------------------------------------------------------------


def verify_greedy(scores: torch.Tensor, guessed: Sequence[int]) -> tuple[int, int]:
    """(guesses kept, the target's own next token): scores [len(guessed) + 1, V] after shaping."""
    choices = scores.argmax(dim=-1).tolist()
    kept = 0
    while kept < len(guessed) and choices[kept] == guessed[kept]:
        kept += 1
    return kept, choices[kept]


def verify_sampled(
    p: torch.Tensor, guessed: Sequence[int], q: torch.Tensor | None, generator: torch.Generator | None
) -> tuple[int, int]:
    """Rejection sampling: keep guess i with probability min(1, p_i / q_i), else draw from the residual
    max(0, p − q), so every token is distributed as the target's. `q` None: deterministic guesses (a point
    mass on each guessed token)."""
    for i, token in enumerate(guessed):
        q_i = (
            torch.nn.functional.one_hot(torch.tensor(token), p.shape[-1]).to(p.dtype)
            if q is None
            else _pad(q[i], p.shape[-1])
        )
        ratio = float(p[i, token] / q_i[token]) if q_i[token] > 0 else 0.0
        if float(torch.rand((), generator=generator)) < min(1.0, ratio):
            continue
        residual = (p[i] - q_i).clamp(min=0)
        total = float(residual.sum())
        # residual mass is 0 only when p == q, where the guess could not have been rejected
        distribution = residual / total if total > 0 else p[i]
        return i, int(torch.multinomial(distribution, 1, generator=generator))
    return len(guessed), int(torch.multinomial(p[len(guessed)], 1, generator=generator))


def _pad(probs: torch.Tensor, size: int) -> torch.Tensor:
    """Draft probabilities over the target's vocabulary: ids only the target has get probability 0."""
    if probs.shape[-1] >= size:
        return probs[..., :size]
    return torch.nn.functional.pad(probs, (0, size - probs.shape[-1]))


# ---- the scheduler -------------------------------------------------------------------------------------


class GammaScheduler:
    """Chooses γ per round to maximise expected tokens per second, γ = 0 (plain decoding) included.

    With acceptance α, a round guessing γ tokens yields (1 − α^(γ+1)) / (1 − α) tokens and costs γ guesses
    plus one target forward over γ + 1 tokens. What a forward of k tokens costs is kept per k (a running
    mean, then exponentially weighted) and read between the widths measured by straight lines (steep on a
    compute-bound CPU, flat on a GPU); γ = 0 yields 1 token for one forward of width 1. Each source
    (draft, lookup) keeps its own α and cost per guess. When plain decoding wins, the scheduler probes
    again after `probe_every` plain rounds (doubling while probes keep losing), since acceptance changes
    along an answer.
    """

    def __init__(self, gamma: int = 4, max_gamma: int = 12, decay: float = 0.8, probe_every: int = 8,
                 fixed: int | None = None) -> None:  # fmt: skip
        self.gamma, self.max_gamma, self.decay, self.fixed = gamma, max_gamma, decay, fixed
        # costs are the machine's and change slowly: they are remembered far longer than acceptance
        self.cost_decay = 0.97
        self.counts: dict[str, list[float]] = {}  # source → [accepted, rejected] (decayed)
        self.guess_seconds: dict[str, float] = {}
        # call width k → [seconds per forward, observations]. Each width keeps its own mean, so a long run of
        # plain rounds refines the cost of one token and leaves what 2 or 4 tokens cost as measured. (One
        # least-squares line over every call, exponentially weighted, forgot the wide calls after ~100 plain
        # rounds and fell back to a guess of +20 % per token: right for a memory-bound CPU, 2.5× too low for
        # llama.cpp on a 2-core AVX2 one, where it made lookup rounds look free and lose ~12 %.)
        self.widths: dict[int, list[float]] = {}
        self.probe_every = self.base_probe = probe_every
        self.plain_rounds = 0

    def new_answer(self) -> None:
        """Forget acceptance (it depends on the prompt); keep the costs (they depend on the machine)."""
        self.counts.clear()
        self.plain_rounds, self.probe_every = 0, self.base_probe

    def costs(self) -> dict[str, Any]:
        """What was measured of the machine (generation/costs.py keeps it between runs): the target's
        seconds per call of each width and each source's seconds per guess."""
        return {"widths": {str(k): list(v) for k, v in sorted(self.widths.items())},
                "guess_seconds": dict(self.guess_seconds)}  # fmt: skip

    def use_costs(self, costs: dict[str, Any]) -> None:
        """Start from costs measured before (`costs()` of an earlier run on the same machine and models)."""
        self.widths = {int(k): [float(v[0]), float(v[1])] for k, v in costs["widths"].items()}
        self.guess_seconds = dict(costs["guess_seconds"])

    @staticmethod
    def prior(source: str) -> tuple[float, float]:
        """(accepted, rejected) before any round, worth about one round: a draft agrees often (α ≈ 0.74);
        a prompt-lookup match is a coin toss until it proves itself (a matched n-gram in open text is
        often followed by something else), so it does not crowd out the draft on a hunch."""
        return (1.0, 1.0) if source == "lookup" else (2.8, 1.0)

    def alpha(self, source: str) -> float:
        accepted, rejected = self.counts.get(source, self.prior(source))
        return accepted / (accepted + rejected)

    def observe(self, source: str | None, guessed: int, accepted: int, guess_s: float, target_k: int,
                target_s: float) -> None:  # fmt: skip
        d = self.decay
        if source is not None and guessed:
            accepted_sum, rejected_sum = self.counts.get(source, self.prior(source))
            self.counts[source] = [d * accepted_sum + accepted, d * rejected_sum + (accepted < guessed)]
            per_token = guess_s / guessed
            previous = self.guess_seconds.get(source)
            c = self.cost_decay
            self.guess_seconds[source] = per_token if previous is None else c * previous + (1 - c) * per_token
        mean, seen = self.widths.get(target_k, [0.0, 0.0])
        seen += 1
        weight = max(1 / seen, 1 - self.cost_decay)  # a running mean at first, then exponentially weighted
        self.widths[target_k] = [mean + weight * (target_s - mean), seen]

    def target_seconds(self, k: int) -> float:
        """Seconds of one target forward over k tokens: between two measured widths on the line through
        them, outside them on the line through the nearest two; with one width measured, a guess of +20 %
        per token (CPU-like) until a wider call is seen."""
        known = sorted((width, mean) for width, (mean, _) in self.widths.items())
        if len(known) == 1:
            width, mean = known[0]
            per_token = 0.2 * mean / (1 + 0.2 * (width - 1))
            return max(mean + per_token * (k - width), 1e-6)
        right = min(max(bisect.bisect_left([width for width, _ in known], k), 1), len(known) - 1)
        (k0, t0), (k1, t1) = known[right - 1], known[right]
        per_token = max((t1 - t0) / (k1 - k0), 0.0)
        return max(t0 + per_token * (k - k0), 1e-6)

    def rate(self, source: str, gamma: int) -> float:
        """Expected tokens per second of a round guessing `gamma` tokens from `source`."""
        if gamma == 0:
            return 1 / self.target_seconds(1)
        alpha = min(self.alpha(source), 0.999)
        tokens = (1 - alpha ** (gamma + 1)) / (1 - alpha)
        return tokens / (gamma * self.guess_seconds.get(source, 0.0) + self.target_seconds(gamma + 1))

    def choose(self, options: dict[str, int], room: int) -> tuple[str | None, int]:
        """(source, γ) for this round from the sources that can guess (each with the most it can guess);
        γ = 0 is plain decoding. `room`: tokens left in the answer besides the target's own."""
        bounds = {s: min(self.max_gamma, most, room) for s, most in options.items()}
        bounds = {s: b for s, b in bounds.items() if b >= 1}
        if not bounds:
            return None, 0
        if self.fixed is not None:
            source = "lookup" if "lookup" in bounds else next(iter(bounds))
            return source, min(self.fixed, bounds[source])
        unmeasured = [s for s in bounds if s not in self.guess_seconds and s != "lookup"]
        if not self.widths or unmeasured:  # nothing measured yet: start from the prior
            source = unmeasured[0] if unmeasured else next(iter(bounds))
            return source, min(self.gamma, bounds[source])
        candidates = [(s, g) for s, bound in bounds.items() for g in range(1, bound + 1)]
        source, gamma = max(candidates, key=lambda c: self.rate(*c))
        if self.rate(source, gamma) > self.rate(source, 0):
            self.plain_rounds, self.probe_every = 0, self.base_probe
            return source, gamma
        self.plain_rounds += 1
        # look again (acceptance may have recovered), with a source that could pay at all
        hopeful = [s for s in bounds if self.could_pay(s, bounds[s])]
        if hopeful and self.plain_rounds >= self.probe_every:
            self.plain_rounds = 0
            self.probe_every = min(self.probe_every * 2, 64)
            source = max(hopeful, key=lambda s: max(self.rate(s, g) for g in range(1, bounds[s] + 1)))
            return source, min(2, bounds[source])
        return None, 0

    def could_pay(self, source: str, most: int) -> bool:
        """Whether guessing from `source` would beat plain decoding if every guess were kept (α = 1). Where
        a guess costs about what a target token does (a draft as slow as the target: an int8 0.5B beside
        llama.cpp's 4-bit 1.5B on a 2-core CPU, 45 vs 50 ms), no acceptance pays, and probing it only adds
        its guesses and its catch-up reads."""
        per_guess = self.guess_seconds.get(source, 0.0)
        plain = 1 / self.target_seconds(1)
        return any((g + 1) / (g * per_guess + self.target_seconds(g + 1)) > plain for g in range(1, most + 1))


# ---- the loop ------------------------------------------------------------------------------------------


class SpeculativeDecoder:
    """Decodes one answer with the target, verifying what a proposer guesses (none: plain decoding)."""

    def __init__(
        self,
        target: Any,
        pipeline: LogitsPipeline | None = None,
        stop_ids: set[int] | frozenset[int] = frozenset(),
        *,
        gamma: int | None = None,
        max_gamma: int = 12,
        generator: torch.Generator | None = None,
    ) -> None:
        self.target = target
        self.pipeline = pipeline or LogitsPipeline()
        self.stop_ids = stop_ids
        self.fixed_gamma, self.max_gamma = gamma, max_gamma
        self.generator = generator or new_generator(self.pipeline.sampling.seed)
        # costs are the machine's and carry over between answers; acceptance is each answer's own
        self.scheduler = GammaScheduler(4, max_gamma, fixed=gamma)

    def decode(
        self,
        prompt_ids: Sequence[int],
        proposer: Proposer | None,
        max_new_tokens: int,
        stats: Stats | None = None,
        on_tokens: TokenCallback | None = None,
    ) -> tuple[list[int], Stats]:
        """The answer's token ids after `prompt_ids`."""
        stats = stats or Stats()
        start = time.perf_counter()
        target = open_sequence(self.target)
        prompt = list(prompt_ids)
        target.feed(prompt[:-1])
        pending = prompt[-1:]
        scheduler = self.scheduler
        scheduler.new_answer()
        out: list[int] = []
        while len(out) < max_new_tokens:
            context = prompt + out
            room = max_new_tokens - len(out) - 1  # the target always adds one token of its own
            options = proposer.options(context) if proposer is not None else {}
            source, gamma = scheduler.choose(options, room)
            proposal = Proposal([], None, "none")
            guess_s = 0.0
            if options:
                stats.gammas.append(gamma)
            if source is not None and gamma > 0:
                guess_start = time.perf_counter()
                proposal = proposer.propose(context, gamma, source)  # type: ignore[union-attr]
                guess_s = time.perf_counter() - guess_start - proposal.catch_up_s
            before = target.seconds
            guessed = proposal.tokens
            logits = target.feed(pending + guessed, keep=len(guessed) + 1)
            contexts = [context + guessed[:i] for i in range(len(guessed) + 1)]
            if self.pipeline.greedy:
                kept, token = verify_greedy(self.pipeline.shaped(contexts, logits), guessed)
            else:
                p = self.pipeline.probabilities(contexts, logits)
                kept, token = verify_sampled(p, guessed, proposal.probs, self.generator)
            scheduler.observe(proposal.source if guessed else None, len(guessed), kept, guess_s,
                              len(guessed) + 1, target.seconds - before)  # fmt: skip
            if guessed:
                stats.count(proposal.source, len(guessed), kept)
            target.crop(target.length - len(guessed) + kept)
            pending = [token]
            new = [*guessed[:kept], token]
            for position, value in enumerate(new):
                if value in self.stop_ids:
                    new = new[: position + 1]
                    break
            new = new[: max_new_tokens - len(out)]
            out.extend(new)
            if proposer is not None:
                proposer.commit(new)
            if on_tokens is not None and on_tokens(new) is False:
                break
            if out and out[-1] in self.stop_ids:
                break
        stats.target_forwards += target.forwards
        stats.draft_forwards += proposer.forwards if proposer is not None else 0
        stats.tokens = len(out)
        stats.seconds += time.perf_counter() - start
        return out, stats
