"""How a model reads draft prompts: the moderation prompt around each text, the instruction's KV cache
computed once, prompts read in batches — and what is read there: the tag margin, the probe's features, or
the greedy tag. The gate (gate.py), the probe's fitting (probe.py) and calibration all read through here,
so one prompt and a thousand are read by the same code with the same constants.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from smoothie_cli.cautious.conversation import INPUT_BUDGET, Conversation, ConversationReader
from smoothie_cli.cautious.prompts import (
    MODERATION_INSTRUCTION,
    SAFE_TAG,
    TOXIC_TAG,
    Gate,
    draft_prompt,
    instruction_prefix,
    read_tag,
    template_tail,
)
from smoothie_cli.generation.cache import with_cache
from smoothie_cli.progress import Progress, no_progress

# the most tokens a greedy read decodes: "<Toc>" / "<Safe>" are 3–4 Qwen tokens, plus room for a leading
# space or newline; a draft that has not written a tag by then is not tagging
GATE_TOKENS = 8
BATCH_SIZE = 64  # prompts per batch at most
TOKEN_BUDGET = 1024  # padded tokens per batch at most (prefill is compute-bound on a CPU)


@dataclass(frozen=True)
class TagTokens:
    """How the two tags are written: the tokens they share, then the token where they part."""

    shared: tuple[int, ...]
    toxic: int
    safe: int


def tag_tokens(tokenizer: Any) -> TagTokens:
    toxic = tokenizer(TOXIC_TAG, add_special_tokens=False)["input_ids"]
    safe = tokenizer(SAFE_TAG, add_special_tokens=False)["input_ids"]
    n = 0
    while n < min(len(toxic), len(safe)) and toxic[n] == safe[n]:
        n += 1
    return TagTokens(tuple(toxic[:n]), toxic[n], safe[n])


def margin_of(logits: Any, tags: TagTokens) -> float:
    """log P(<Toc>) − log P(<Safe>) at the parting token, from that position's logits."""
    return float(logits[..., tags.toxic].float() - logits[..., tags.safe].float())


class FeatureSpec(Protocol):
    """Where features are read (probe.ProbeSpec): the layers, and how one prompt's states become a row."""

    @property
    def layers(self) -> tuple[int, ...]: ...

    def features(self, states: dict[int, Any], span: int, tail: int) -> Any: ...


class _Enough(Exception):
    """Raised by the last hook the features need: the layers above it need not run."""


def decoder_layers(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model.layers


@contextmanager
def capture(model: Any, layers: Sequence[int], stop: bool = False) -> Iterator[dict[int, list]]:
    """Record the hidden states after each decoder layer in `layers` (1-based, as in
    `output_hidden_states`) of every forward; with `stop`, end each forward after the highest (a forward
    that only reads features skips the layers above, ~40% of its cost on the 0.5B)."""
    blocks = decoder_layers(model)
    seen: dict[int, list] = {n: [] for n in layers}
    top = max(layers)

    def hook(number: int) -> Any:
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            seen[number].append((output[0] if isinstance(output, tuple) else output).detach().float())
            if stop and number == top:
                raise _Enough

        return record

    handles = [blocks[n - 1].register_forward_hook(hook(n)) for n in seen]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


class DraftReading:
    """`model` reading draft prompts (the moderation instruction around each text) in batches.

    Every prompt opens with the same ~90-token instruction, two thirds of the work on a typical prompt: its
    KV cache is computed on first use, kept, and copied into every batch, so only the user's text is
    prefilled per prompt. Batches hold up to `batch_size` prompts of similar length and `token_budget`
    padded tokens, so a few long prompts do not pad a whole batch. `forwards` counts the model's forwards.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        instruction: str | None = None,
        batch_size: int = BATCH_SIZE,
        token_budget: int = TOKEN_BUDGET,
        input_budget: int = INPUT_BUDGET,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.instruction = instruction or MODERATION_INSTRUCTION  # None: the one the seed trained with
        self.batch_size, self.token_budget = batch_size, token_budget
        self.conversations = ConversationReader(tokenizer, input_budget)
        self.prefix = instruction_prefix(tokenizer, self.instruction)
        self.tags = tag_tokens(tokenizer)
        self._shared: Any = None  # the instruction's KV cache
        self.forwards = 0

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def encode(self, conversation: Conversation) -> list[int]:
        """The draft prompt's ids for one conversation (or text): conversation.py renders it."""
        text = self.conversations.text(conversation)
        return self.tokenizer(draft_prompt(text, self.instruction), add_special_tokens=False)["input_ids"]

    def shared_prefix(self) -> Any:
        """The instruction's KV cache (a DynamicCache over `prefix`), computed once."""
        if self._shared is None:
            import torch
            from transformers import DynamicCache

            shared = DynamicCache()
            # the decoder layers only: no logits are wanted, and a one-row pass through an int8 head would
            # pack its one-row kernel (1.4 s for the 0.5B's head on a 2-core CPU) for nothing
            base = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model
            with torch.inference_mode():
                base(input_ids=torch.tensor([self.prefix], device=self.device), **with_cache(base, shared),
                     use_cache=True)  # fmt: skip
            self.forwards += 1
            self._shared = shared
        return self._shared

    # ---- what is read ------------------------------------------------------------------------------

    def margins(self, texts: Sequence[Conversation], progress: Progress = no_progress,
                description: str = "scoring the draft's tags") -> list[float]:  # fmt: skip
        """log P(<Toc>) − log P(<Safe>) for each text: one prefill per batch, no decoding."""
        from smoothie_cli.generation.batched import masked_logits

        margins = [0.0] * len(texts)
        for group, ids, mask, cache in self.batches(texts, self.tags.shared, progress, description):
            # two positions per row, so lm_head never sees a single row: an int8 draft's Int8Linear sends
            # one row through another kernel (models/int8.py), and a lone request would read another margin
            logits = masked_logits(self.model, ids.to(self.device), mask.to(self.device), cache, keep=2)
            self.forwards += 1
            for i, row in zip(group, logits):
                margins[i] = margin_of(row, self.tags)
        return margins

    def features(self, texts: Sequence[Conversation], spec: FeatureSpec, progress: Progress = no_progress,
                 description: str = "reading the draft's features") -> Any:  # fmt: skip
        """Features (`spec`) of each text's draft prompt (+ the tags' shared tokens) as rows of a tensor."""
        import torch

        shared = len(self.tags.shared)
        rows: list[Any] = [None] * len(texts)
        for group, ids, mask, cache in self.batches(texts, self.tags.shared, progress, description):
            ids, mask = ids.to(self.device), mask.to(self.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
            with (
                capture(self.model, spec.layers, stop=True) as seen,
                torch.inference_mode(),
                suppress(_Enough),
            ):
                self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                           **with_cache(self.model, cache), use_cache=cache is not None,
                           logits_to_keep=1)  # fmt: skip
            self.forwards += 1
            cut = mask.shape[1] - ids.shape[1]  # the shared prefix's columns, when it was cached
            real = mask[:, cut:].sum(-1).tolist()
            for row, i in enumerate(group):
                span = int(real[row]) if cut else int(real[row]) - len(self.prefix)  # left padding first
                tail = template_tail(self.tokenizer, ids[row, : ids.shape[1] - shared].tolist()) + shared
                states = {n: seen[n][0][row] for n in spec.layers}
                rows[i] = spec.features(states, max(span, 1), tail).cpu()
        return torch.stack(rows) if rows else torch.zeros(0)

    def greedy(self, texts: Sequence[Conversation], progress: Progress = no_progress,
               description: str = "reading the draft's tags") -> list[Gate]:  # fmt: skip
        """The tag each text's draft prompt opens its answer with, decoded greedily (up to GATE_TOKENS;
        a row stops once its tag is decided); "untagged" when it writes none."""
        from smoothie_cli.generation.batched import decode_batch
        from smoothie_cli.generation.prompts import stop_ids

        eos = stop_ids(self.model, self.tokenizer)
        gates: list[Gate] = ["untagged"] * len(texts)
        for group, ids, mask, cache in self.batches(texts, (), progress, description):
            written: dict[int, list[int]] = {}
            decode_batch(self.model, ids, mask, max_new_tokens=GATE_TOKENS, eos_ids=eos, cache=cache,
                         on_step=self._until_tagged(written))  # fmt: skip
            for row, i in enumerate(group):
                gates[i] = self._tag(written.get(row, [])) or "untagged"
        return gates

    def _until_tagged(self, written: dict[int, list[int]]) -> Any:
        """A decode_batch step callback: keeps each row's tokens in `written`, stops rows whose tag is
        decided, counts the forwards."""

        def decided(rows: list[int], tokens: list[int]) -> list[int]:
            self.forwards += 1
            done = []
            for row, token in zip(rows, tokens):
                written.setdefault(row, []).append(token)
                if self._tag(written[row]) is not None:
                    done.append(row)
            return done

        return decided

    def _tag(self, tokens: Sequence[int]) -> Gate | None:
        return read_tag(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    # ---- batching ----------------------------------------------------------------------------------

    def batches(
        self, texts: Sequence[Conversation], suffix: Sequence[int], progress: Progress, description: str
    ) -> Iterator[tuple[list[int], Any, Any, Any]]:
        """Left-padded batches of draft prompts (+ `suffix` tokens): (text indices, ids, mask, cache or
        None). A prompt whose tokens do not start with the prefix's (a merge across the boundary) gets no
        sharing."""
        import torch

        encoded = [self.encode(text) + list(suffix) for text in texts]
        prefix = self.prefix
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
        progress(description, 0, len(texts))
        done = 0
        lengths = [len(encoded[i]) - len(prefix) for i in range(len(texts))]
        for batch in _batches(order, lengths, self.batch_size, self.token_budget):
            sharing = [i for i in batch if encoded[i][: len(prefix)] == prefix]
            alone = [i for i in batch if i not in sharing]
            for group, cut in ((sharing, len(prefix)), (alone, 0)):
                if not group:
                    continue
                suffixes = [encoded[i][cut:] for i in group]
                width = max(map(len, suffixes))
                ids = torch.tensor([[pad] * (width - len(x)) + x for x in suffixes])
                mask = torch.tensor([[1] * cut + [0] * (width - len(x)) + [1] * len(x) for x in suffixes])
                cache = None
                if cut:
                    cache = copy.deepcopy(self.shared_prefix())
                    cache.batch_repeat_interleave(len(group))
                yield group, ids, mask, cache
            done += len(batch)
            progress(description, done, len(texts))


def _batches(order: list[int], lengths: list[int], most: int, budget: int) -> list[list[int]]:
    """Consecutive groups of `order` (longest first) of at most `most` items and `budget` padded tokens."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = max([lengths[j] for j in current] + [lengths[i]])
        if current and (len(current) + 1 > most or (len(current) + 1) * width > budget):
            batches.append(current)
            current = []
        current.append(i)
    return [*batches, current] if current else batches


def tag_margins(model: Any, tokenizer: Any, prompts: Sequence[Conversation], *,
                progress: Progress = no_progress,
                description: str = "scoring the draft's tags", **reading: Any) -> list[float]:  # fmt: skip
    """log P(<Toc>) − log P(<Safe>) for each prompt (DraftReading.margins; `reading`: its instruction,
    batch_size, token_budget)."""
    return DraftReading(model, tokenizer, **reading).margins(prompts, progress, description)


def probe_features(model: Any, tokenizer: Any, prompts: Sequence[Conversation], spec: FeatureSpec, *,
                   progress: Progress = no_progress, description: str = "reading the draft's features",
                   **reading: Any) -> Any:  # fmt: skip
    """Features (`spec`) of each prompt's draft prompt (DraftReading.features; `reading` as tag_margins)."""
    return DraftReading(model, tokenizer, **reading).features(prompts, spec, progress, description)
