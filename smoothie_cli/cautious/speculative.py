"""Speculative decoding with instruction swapping: draft and target read different prompts, share the answer.

transformers' assisted generation feeds the draft the target's exact input ids (so no instruction swapping),
supports batch size 1 only like this loop, and on a CPU its fixed draft schedule is slower than the target
alone. Here each model keeps its own KV cache over its own prompt plus the shared answer; the draft proposes
γ tokens, the target scores them in one forward, and γ follows the measured acceptance and costs.

Exactness: greedy keeps the longest prefix the target's argmax agrees with plus the target's own next token,
so the text equals target-only greedy decoding; sampling uses the rejection rule of Leviathan et al. / Chen
et al., so every token is distributed as the target's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from smoothie_cli.cautious.gate import margin_of, tag_tokens
from smoothie_cli.cautious.prompts import (
    DEFAULT_REFUSAL,
    SAFE_TAG,
    TAG_SEPARATOR,
    Gate,
    draft_prompt,
    read_tag,
)
from smoothie_cli.errors import SmoothieError
from smoothie_cli.progress import Progress, no_progress

GATE_MAX_TOKENS = 8  # the tags are 3–4 tokens in Qwen's vocabulary; more means the draft is not tagging


@dataclass
class Sampling:
    """Greedy when temperature is 0; otherwise temperature and nucleus (top-p) sampling."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise SmoothieError(f"--temperature must be ≥ 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SmoothieError(f"--top-p must be in (0, 1], not {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Next-token distributions (rows of `logits`) after temperature and top-p."""
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            # keep the smallest set whose mass reaches top_p (the token that crosses it included)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= self.top_p
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
            probs = probs / probs.sum(-1, keepdim=True)
        return probs


@dataclass
class Stats:
    tokens: int = 0
    proposed: int = 0
    accepted: int = 0
    target_forwards: int = 0
    draft_forwards: int = 0
    seconds: float = 0.0
    gammas: list[int] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.proposed if self.proposed else None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

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
        }


@dataclass
class Result:
    prompt: str
    text: str
    gate: Gate
    token_ids: list[int]
    stats: Stats

    def as_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "text": self.text, "gate": self.gate, **self.stats.as_dict()}


@dataclass
class CautiousGenerator:
    """The evaluation `Generator` interface over a decoder: one prompt at a time (speculation is batch 1)."""

    decoder: CautiousDecoder
    max_new_tokens: int = 128
    name: str = "cautious speculation"

    def generate(self, examples: Sequence[Any], progress: Progress = no_progress) -> list[str]:
        answers = []
        for n, example in enumerate(examples):
            progress(f"generating ({self.name})", n, len(examples))
            result = self.decoder.generate(example.prompt, self.max_new_tokens, system=example.system)
            answers.append(result.text)
        progress(f"generating ({self.name})", len(examples), len(examples))
        return answers


class CachedModel:
    """One causal LM with its own KV cache, fed a token at a time or a block at a time (batch 1)."""

    def __init__(self, model: Any) -> None:
        from transformers import DynamicCache

        self.model = model
        self.device = next(model.parameters()).device
        self.cache = DynamicCache()
        self.length = 0  # positions held in the cache
        self.forwards = 0
        self.seconds = 0.0

    def feed(self, tokens: Sequence[int], keep: int = 1) -> torch.Tensor:
        """Run `tokens` after the cached context; float32 logits of the last `keep` positions [keep, V]."""
        if not tokens:
            return torch.empty(0)
        start = time.perf_counter()
        ids = torch.tensor([list(tokens)], device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True, logits_to_keep=keep)
        self.length += len(tokens)
        self.forwards += 1
        self.seconds += time.perf_counter() - start
        return out.logits[0].float()

    def crop(self, length: int) -> None:
        """Forget every position after `length` (rejected draft tokens)."""
        if length < self.length:
            # a negative count removes that many positions in transformers 4.x and 5 alike (5 refuses a
            # positive target length)
            self.cache.crop(length - self.length)
            self.length = length


class CostModel:
    """Chooses γ to maximise expected tokens per second from the acceptance rate and measured costs.

    With acceptance α, a round drafting γ tokens yields (1 − α^(γ+1)) / (1 − α) tokens and costs γ draft
    forwards plus one target forward over γ + 1 tokens (modelled as a + b·(γ + 1), fitted online by
    exponentially weighted least squares, since b depends on the machine: large on a CPU, small on a GPU).
    """

    def __init__(self, gamma: int = 4, max_gamma: int = 12, decay: float = 0.8) -> None:
        self.gamma, self.max_gamma, self.decay = gamma, max_gamma, decay
        self.accepted, self.rejected = 2.8, 1.0  # prior α ≈ 0.74, worth about one round
        self.draft_seconds: float | None = None
        self.fit = [0.0] * 5  # weighted Σw, Σk, Σt, Σk², Σk·t over (k tokens verified, seconds)

    @property
    def alpha(self) -> float:
        return self.accepted / (self.accepted + self.rejected)

    def observe(self, drafted: int, accepted: int, draft_s: float, target_k: int, target_s: float) -> None:
        d = self.decay
        self.accepted = d * self.accepted + accepted
        self.rejected = d * self.rejected + (1 if accepted < drafted else 0)
        if drafted:
            per_token = draft_s / drafted
            self.draft_seconds = (
                per_token if self.draft_seconds is None else d * self.draft_seconds + (1 - d) * per_token
            )
        self.fit = [d * s for s in self.fit]
        for i, value in enumerate((1.0, target_k, target_s, target_k * target_k, target_k * target_s)):
            self.fit[i] += value

    def target_seconds(self, k: int) -> float:
        w, sk, st, skk, skt = self.fit
        mean_t = st / w
        variance = skk / w - (sk / w) ** 2
        if variance < 0.25:  # one γ seen so far: assume verifying costs grow 20 % per token (CPU-like)
            per_token = 0.2 * mean_t / (1 + 0.2 * (sk / w - 1))
        else:
            per_token = max((skt / w - sk / w * mean_t) / variance, 0.0)
        base = mean_t - per_token * sk / w
        return max(base + per_token * k, 1e-6)

    def next_gamma(self) -> int:
        if self.draft_seconds is None or not self.fit[0]:
            return self.gamma
        alpha = min(self.alpha, 0.999)
        best, best_rate = 1, -math.inf
        for gamma in range(1, self.max_gamma + 1):
            tokens = (1 - alpha ** (gamma + 1)) / (1 - alpha)
            rate = tokens / (gamma * self.draft_seconds + self.target_seconds(gamma + 1))
            if rate > best_rate:
                best, best_rate = gamma, rate
        self.gamma = best
        return best


class CautiousDecoder:
    """The draft gates each request by its tag, then drafts for the target; `draft=None` is target alone."""

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
        sampling: Sampling | None = None,
        system: str | None = None,
        stop_ids: set[int] | None = None,
        gate: bool = True,
        gate_threshold: float | None = None,
        gate_model: Any | None = None,
    ) -> None:
        from smoothie_cli.evaluation.generation import stop_ids as model_stop_ids

        if gamma is not None and gamma < 1:
            raise SmoothieError(f"--gamma must be at least 1, not {gamma}")
        if on_untagged not in ("continue", "refuse"):
            raise SmoothieError(f"--on-untagged must be continue or refuse, not '{on_untagged}'")
        self.target, self.tokenizer, self.draft = target, tokenizer, draft
        self.instruction, self.refusal, self.on_untagged = instruction, refusal, on_untagged
        self.fixed_gamma, self.max_gamma = gamma, max_gamma
        self.sampling = sampling or Sampling()
        self.system = system
        self.gate = gate  # False: no tag is read; the draft drafts as if it had written "<Safe>\n"
        # None: the tag is read greedily; a number: toxic when the tag margin is above it (gate.py)
        self.gate_threshold = gate_threshold
        # the model that reads the tag when it is not the draft itself: a full-precision copy of an int8
        # draft (dynamic int8 shifts the tag margin by ~2 and blurs it: AUC 0.95 → 0.92 on the held-out split)
        self.gate_model = gate_model
        self.stop_ids = stop_ids if stop_ids is not None else model_stop_ids(target, tokenizer)
        # models of one family may differ in padded rows (151,936 vs 152,064): draft on the shared ids
        self.shared_vocab = min(_vocab_rows(target), _vocab_rows(draft)) if draft is not None else 0
        self.generator = torch.Generator()
        if self.sampling.seed is not None:
            self.generator.manual_seed(self.sampling.seed)

    # ---- prompts -----------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def target_ids(self, prompt: str, system: str | None = None) -> list[int]:
        from smoothie_cli.evaluation.examples import Example
        from smoothie_cli.evaluation.generation import chat_prompt

        example = Example("prompt", prompt, system=system or self.system)
        return self._encode(chat_prompt(self.tokenizer, example))

    def _draft_text(self, prompt: str) -> str:
        return draft_prompt(prompt) if self.instruction is None else draft_prompt(prompt, self.instruction)

    def draft_ids(self, prompt: str) -> list[int]:
        return self._encode(self._draft_text(prompt))

    # ---- one request -------------------------------------------------------------------------------

    def generate(self, prompt: str, max_new_tokens: int = 128, system: str | None = None) -> Result:
        if not prompt.strip():
            raise SmoothieError("the prompt is empty; give the text to answer")
        if max_new_tokens < 1:
            raise SmoothieError(f"--max-new-tokens must be at least 1, not {max_new_tokens}")
        start = time.perf_counter()
        stats = Stats()
        draft: CachedModel | None = None
        draft_pending: list[int] = []
        gate: Gate = "none"
        refused = False
        gate_forwards = 0  # of a separate gate model
        if self.draft is not None:
            draft = CachedModel(self.draft)
            if self.gate:
                ids = self.draft_ids(prompt)
                reader = draft if self.gate_model is None else CachedModel(self.gate_model)
                gate, draft_pending = self._read_gate(reader, ids)
                refused = gate == "toxic" or (gate == "untagged" and self.on_untagged == "refuse")
                if reader is not draft:
                    gate_forwards = reader.forwards
                    if not refused:
                        draft.feed(ids[:-1])
            else:
                ids = self._encode(self._draft_text(prompt) + SAFE_TAG + TAG_SEPARATOR)
                draft.feed(ids[:-1])
                draft_pending = ids[-1:]
            stats.draft_forwards = draft.forwards + gate_forwards
            if refused:
                stats.seconds = time.perf_counter() - start
                return Result(prompt, self.refusal, gate, [], stats)
        tokens = self._speculate(self.target_ids(prompt, system), draft, draft_pending, max_new_tokens, stats)
        stats.draft_forwards = (draft.forwards if draft is not None else 0) + gate_forwards
        stats.seconds = time.perf_counter() - start
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Result(prompt, text, gate, tokens, stats)

    def speculate_ids(
        self, target_ids: Sequence[int], draft_ids: Sequence[int] | None, max_new_tokens: int
    ) -> tuple[list[int], Stats]:
        """Speculation without the gate: the draft continues `draft_ids`, the target `target_ids`."""
        start = time.perf_counter()
        stats = Stats()
        draft = CachedModel(self.draft) if self.draft is not None and draft_ids is not None else None
        if draft is not None:
            draft.feed(list(draft_ids)[:-1])
        pending = list(draft_ids or [])[-1:]
        tokens = self._speculate(list(target_ids), draft, pending, max_new_tokens, stats)
        stats.seconds = time.perf_counter() - start
        return tokens, stats

    def _read_gate(self, draft: CachedModel, prompt_ids: list[int]) -> tuple[Gate, list[int]]:
        """Greedy draft tokens until they spell a tag (or cannot), or with a threshold the calibrated tag
        margin (one forward). Returns the gate and the draft's pending tokens: the tag and separator after
        <Safe>, the prompt's last token (a fresh answer) when untagged."""
        draft.feed(prompt_ids[:-1])
        safe_pending = [prompt_ids[-1], *self._encode(SAFE_TAG + TAG_SEPARATOR)]
        if self.gate_threshold is not None:
            tags = tag_tokens(self.tokenizer)
            margin = margin_of(draft.feed([prompt_ids[-1], *tags.shared])[-1], tags)
            draft.crop(len(prompt_ids) - 1)
            return ("toxic", [prompt_ids[-1]]) if margin > self.gate_threshold else ("safe", safe_pending)
        pending, written = [prompt_ids[-1]], []
        for _ in range(GATE_MAX_TOKENS):
            token = int(draft.feed(pending)[-1].argmax())
            written.append(token)
            pending = [token]
            gate = read_tag(self.tokenizer.decode(written))
            if gate == "safe":
                # continue the answer from the trained "<Safe>\n", whatever spacing the draft chose
                draft.crop(len(prompt_ids) - 1)
                return "safe", safe_pending
            if gate is not None:
                break
        draft.crop(len(prompt_ids) - 1)
        text = self.tokenizer.decode(written)
        return ("toxic" if read_tag(text) == "toxic" else "untagged"), [prompt_ids[-1]]

    def _speculate(
        self,
        target_prompt: list[int],
        draft: CachedModel | None,
        draft_pending: list[int],
        max_new_tokens: int,
        stats: Stats,
    ) -> list[int]:
        target = CachedModel(self.target)
        target.feed(target_prompt[:-1])
        target_pending = [target_prompt[-1]]
        costs = CostModel(self.fixed_gamma or 4, self.max_gamma)
        out: list[int] = []
        while len(out) < max_new_tokens:
            room = max_new_tokens - len(out) - 1  # the target always adds one token of its own
            drafted: list[int] = []
            draft_probs: list[torch.Tensor] = []
            draft_s = 0.0
            if draft is not None and room > 0:
                gamma = min(self.fixed_gamma or costs.next_gamma(), room)
                stats.gammas.append(gamma)
                before = draft.seconds
                drafted, draft_probs = self._draft(draft, draft_pending, gamma)
                draft_s = draft.seconds - before
            before = target.seconds
            logits = target.feed(target_pending + drafted, keep=len(drafted) + 1)
            accepted, token = self._verify(logits, drafted, draft_probs)
            costs.observe(len(drafted), accepted, draft_s, len(drafted) + 1, target.seconds - before)
            stats.proposed += len(drafted)
            stats.accepted += accepted
            target.crop(target.length - len(drafted) + accepted)
            target_pending = [token]
            if draft is not None:
                stats.draft_forwards = draft.forwards
                draft_pending = self._roll_back_draft(draft, draft_pending, drafted, accepted, token)
                if token >= self.shared_vocab:
                    # a target-only id (a padding row past the draft's vocabulary): the draft cannot read
                    # it, so the rest of this answer is the target's alone
                    draft = None
            new = [*drafted[:accepted], token]
            for position, value in enumerate(new):
                if value in self.stop_ids:
                    new = new[: position + 1]
                    break
            out.extend(new)
            if out and out[-1] in self.stop_ids:
                break
        stats.target_forwards = target.forwards
        out = out[:max_new_tokens]
        stats.tokens = len(out)
        return out

    def _draft(
        self, draft: CachedModel, pending: list[int], gamma: int
    ) -> tuple[list[int], list[torch.Tensor]]:
        drafted: list[int] = []
        probs: list[torch.Tensor] = []
        step = pending
        for _ in range(gamma):
            logits = draft.feed(step)[-1][: self.shared_vocab]
            if self.sampling.greedy:
                token = int(logits.argmax())
            else:
                q = self.sampling.probabilities(logits)
                token = int(torch.multinomial(q, 1, generator=self.generator))
                probs.append(q)
            drafted.append(token)
            step = [token]
            if token in self.stop_ids:
                break
        return drafted, probs

    def _verify(
        self, logits: torch.Tensor, drafted: list[int], draft_probs: list[torch.Tensor]
    ) -> tuple[int, int]:
        """How many drafted tokens the target keeps, and the target's own next token after them."""
        if self.sampling.greedy:
            choices = logits.argmax(dim=-1).tolist()
            accepted = 0
            while accepted < len(drafted) and choices[accepted] == drafted[accepted]:
                accepted += 1
            return accepted, choices[accepted]
        p = self.sampling.probabilities(logits)
        for i, token in enumerate(drafted):
            q = _pad(draft_probs[i], p.shape[-1])
            ratio = float(p[i, token] / q[token]) if q[token] > 0 else 0.0
            if float(torch.rand((), generator=self.generator)) < min(1.0, ratio):
                continue
            residual = (p[i] - q).clamp(min=0)
            total = float(residual.sum())
            # residual mass is 0 only when p == q, where the draft token could not have been rejected
            distribution = residual / total if total > 0 else p[i]
            return i, int(torch.multinomial(distribution, 1, generator=self.generator))
        return len(drafted), int(torch.multinomial(p[len(drafted)], 1, generator=self.generator))

    def _roll_back_draft(
        self, draft: CachedModel, pending: list[int], drafted: list[int], accepted: int, token: int
    ) -> list[int]:
        """Crop the draft cache to what the answer kept; return the tokens the draft has yet to read."""
        if not drafted:
            return [*pending, token]
        fed = len(drafted) - 1  # the last drafted token was sampled, never fed
        kept = min(accepted, fed)
        draft.crop(draft.length - fed + kept)
        return [*drafted[kept:accepted], token]


def _vocab_rows(model: Any) -> int:
    return min(model.get_input_embeddings().num_embeddings, model.get_output_embeddings().out_features)


def _pad(probs: torch.Tensor, size: int) -> torch.Tensor:
    """Draft probabilities over the target's vocabulary: ids only the target has get probability 0."""
    if probs.shape[-1] >= size:
        return probs[..., :size]
    return torch.nn.functional.pad(probs, (0, size - probs.shape[-1]))
