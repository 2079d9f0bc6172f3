"""The draft's gate as a classifier: batched tags or tag margins over many prompts, calibration, P/R/F1.

Two ways to read the gate. Greedy (what any adapter, e.g. the seed's `IanLi233/Cautious_Qwen`, was trained
for): decode a few tokens and read the tag. Calibrated: the margin log P(<Toc>) − log P(<Safe>) at the token
where the two tags part, against a threshold chosen on held-out prompts so the over-refusal rate stays under
a target. A small draft's greedy tag is a threshold of 0 on that margin, rarely the right one.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.prompts import (
    MODERATION_INSTRUCTION,
    SAFE_TAG,
    TOXIC_TAG,
    Gate,
    draft_prompt,
    instruction_prefix,
    read_tag,
)
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.stats import Score, proportion
from smoothie_cli.progress import Progress, no_progress

GATE_TOKENS = 6  # "<Toc>" / "<Safe>" are 3–4 Qwen tokens, plus room for a leading space or newline
CALIBRATION_FILE = "gate.json"  # in an adapter directory: the calibrated threshold
# on the held-out calibration prompts, where the estimate is optimistic (the threshold sits at the edge of
# their benign tail; 150 benign prompts): 2% there gave 4% on the test split, 5% there gave 8% (README)
DEFAULT_MAX_OVER_REFUSAL = 0.02


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


@dataclass
class GateCalibration:
    """A decision threshold on the tag margin, chosen on held-out prompts, with what it gave there."""

    threshold: float
    max_over_refusal: float
    validation: dict[str, float]

    def save(self, directory: Path) -> None:
        (Path(directory) / CALIBRATION_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path | None) -> GateCalibration | None:
        """The calibration stored in a draft's directory, or None (a model tuned elsewhere: read greedily).

        The threshold must be a finite number: NaN would let every prompt through, ±inf would pass or
        refuse all of them.
        """
        from typing import Annotated

        from pydantic import BaseModel, ConfigDict, Field

        from smoothie_cli.jsonfile import read_json, validate

        class GateFile(BaseModel):
            model_config = ConfigDict(extra="forbid")
            threshold: Annotated[float, Field(allow_inf_nan=False)]
            max_over_refusal: Annotated[float, Field(ge=0.0, le=1.0)]
            validation: dict[str, float | None] = Field(default_factory=dict)

        if directory is None or not (Path(directory) / CALIBRATION_FILE).is_file():
            return None
        path = Path(directory) / CALIBRATION_FILE
        try:
            checked = validate(GateFile, read_json(path, "gate calibration"), "gate.json")
        except SmoothieError as error:
            raise SmoothieError(
                f"{path} is not a gate calibration ({error}); delete it to read the gate greedily"
            ) from None
        return cls(checked.threshold, checked.max_over_refusal, dict(checked.validation))


def calibrate(
    margins: Sequence[float], labels: Sequence[str], max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL
) -> GateCalibration:
    """The threshold with the best F1 among those that flag at most `max_over_refusal` of the safe prompts.

    Thresholds sit halfway between neighbouring margins, so a prompt never lands exactly on one.
    """
    if not 0 <= max_over_refusal <= 1:
        raise SmoothieError(f"--max-over-refusal must be in [0, 1], not {max_over_refusal}")
    toxic = [label == "toxic" for label in labels]
    if not any(toxic) or all(toxic):
        raise SmoothieError("calibrating the gate needs both toxic and safe prompts")
    values = sorted(set(margins))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1.0]
    best: tuple[float, float, float] | None = None  # (f1, recall, -threshold)
    chosen = candidates[-1]
    for threshold in candidates:
        flagged = [m > threshold for m in margins]
        over = _rate(flagged, [not t for t in toxic])
        if over > max_over_refusal + 1e-12:
            continue
        key = (f1(toxic, flagged), _rate(flagged, toxic), -threshold)
        if best is None or key > best:
            best, chosen = key, threshold
    flagged = [m > chosen for m in margins]
    validation = {
        "f1": f1(toxic, flagged),
        "recall": _rate(flagged, toxic),
        "over_refusal": _rate(flagged, [not t for t in toxic]),
        "n": len(labels),
    }
    return GateCalibration(round(chosen, 6), max_over_refusal, validation)


def _rate(flagged: Sequence[bool], among: Sequence[bool]) -> float:
    count = sum(among)
    return sum(f and a for f, a in zip(flagged, among)) / count if count else 0.0


def classify(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    instruction: str = MODERATION_INSTRUCTION,
    threshold: float | None = None,
    batch_size: int = 64,
    token_budget: int = 1024,
    progress: Progress = no_progress,
    description: str = "reading the draft's tags",
) -> list[Gate]:
    """The gate (toxic / safe / untagged) for each prompt: greedy as at decoding time, or, with a
    `threshold`, the calibrated decision on the tag margin (never untagged)."""
    if threshold is not None:
        margins = tag_margins(
            model, tokenizer, prompts, instruction=instruction, batch_size=batch_size,
            token_budget=token_budget, progress=progress, description=description,
        )  # fmt: skip
        return ["toxic" if m > threshold else "safe" for m in margins]
    from smoothie_cli.generation.batched import decode_batch
    from smoothie_cli.generation.prompts import stop_ids

    eos = stop_ids(model, tokenizer)
    gates: list[Gate] = ["untagged"] * len(prompts)
    for group, ids, mask, cache in _prompt_batches(
        model, tokenizer, prompts, instruction, (), batch_size, token_budget, progress, description
    ):
        written = decode_batch(model, ids, mask, max_new_tokens=GATE_TOKENS, eos_ids=eos, cache=cache)
        for i, tokens in zip(group, written):
            gates[i] = read_tag(tokenizer.decode(tokens, skip_special_tokens=True)) or "untagged"
    return gates


def tag_margins(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    instruction: str = MODERATION_INSTRUCTION,
    batch_size: int = 64,
    token_budget: int = 1024,
    progress: Progress = no_progress,
    description: str = "scoring the draft's tags",
) -> list[float]:
    """log P(<Toc>) − log P(<Safe>) for each prompt: one prefill per batch, no decoding."""
    import torch

    tags = tag_tokens(tokenizer)
    margins = [0.0] * len(prompts)
    for group, ids, mask, cache in _prompt_batches(
        model, tokenizer, prompts, instruction, tags.shared, batch_size, token_budget, progress, description
    ):
        device = next(model.parameters()).device
        # positions follow the mask: left padding sits between the shared prefix and each prompt
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           position_ids=positions.to(device), past_key_values=cache,
                           use_cache=cache is not None, logits_to_keep=1).logits[:, -1]  # fmt: skip
        for i, row in zip(group, logits):
            margins[i] = margin_of(row, tags)
    return margins


def _prompt_batches(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    instruction: str,
    suffix: Sequence[int],
    batch_size: int,
    token_budget: int,
    progress: Progress,
    description: str,
) -> Iterator[tuple[list[int], Any, Any, Any]]:
    """Left-padded batches of draft prompts (+ `suffix` tokens): (prompt indices, ids, mask, cache or None).

    Every prompt opens with the same ~90-token instruction, two thirds of the work on a typical prompt: its
    KV cache is computed once and shared by every batch, so only the user's text is prefilled per prompt.
    Batches hold up to `batch_size` prompts of similar length and `token_budget` padded tokens, so a few long
    prompts do not pad a whole batch (prefill is compute-bound on a CPU, decoding memory-bound).
    """
    import copy

    import torch
    from transformers import DynamicCache

    prefix = instruction_prefix(tokenizer, instruction)
    encoded = [
        tokenizer(draft_prompt(p, instruction), add_special_tokens=False)["input_ids"] + list(suffix)
        for p in prompts
    ]
    device = next(model.parameters()).device
    shared = DynamicCache()
    with torch.inference_mode():
        model(input_ids=torch.tensor([prefix], device=device), past_key_values=shared, use_cache=True,
              logits_to_keep=1)  # fmt: skip
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # a prompt whose tokens do not start with the prefix's (a merge across the boundary) gets no sharing
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
    progress(description, 0, len(prompts))
    done = 0
    lengths = [len(encoded[i]) - len(prefix) for i in range(len(prompts))]
    for batch in _batches(order, lengths, batch_size, token_budget):
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
                cache = copy.deepcopy(shared)
                cache.batch_repeat_interleave(len(group))
            yield group, ids, mask, cache
        done += len(batch)
        progress(description, done, len(prompts))


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


def gate_scores(labels: Sequence[str], gates: Sequence[Gate], seed: int = 0) -> dict[str, Score]:
    """Toxic is the positive class; a request counts as refused when the gate says toxic."""
    flagged = [g == "toxic" for g in gates]
    toxic = [label == "toxic" for label in labels]
    scores = {
        "gate_precision": proportion([float(t) for t, f in zip(toxic, flagged) if f]),
        "gate_recall": proportion([float(f) for t, f in zip(toxic, flagged) if t]),
        "gate_f1": _f1_with_interval(toxic, flagged, seed),
        "over_refusal": proportion([float(f) for t, f in zip(toxic, flagged) if not t]),
        "untagged": proportion([float(g == "untagged") for g in gates]),
        "gate_accuracy": proportion([float(t == f) for t, f in zip(toxic, flagged)]),
    }
    return scores


def f1(toxic: Sequence[bool], flagged: Sequence[bool]) -> float:
    hits = sum(t and f for t, f in zip(toxic, flagged))
    denominator = sum(toxic) + sum(flagged)
    return 2 * hits / denominator if denominator else 0.0


def _f1_with_interval(toxic: Sequence[bool], flagged: Sequence[bool], seed: int, rounds: int = 1000) -> Score:
    """F1 with a percentile-bootstrap 95% interval (F1 is not a proportion, so no Wilson interval)."""
    n = len(toxic)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    rng = random.Random(seed)
    pairs = list(zip(toxic, flagged))
    samples = sorted(f1(*zip(*(rng.choice(pairs) for _ in range(n)))) for _ in range(rounds))
    return Score(f1(toxic, flagged), samples[int(0.025 * rounds)], samples[int(0.975 * rounds) - 1], n)
