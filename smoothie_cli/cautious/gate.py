"""The draft's gate as a classifier: batched tags or tag margins over many prompts, calibration, P/R/F1.

Two ways to read the gate. Greedy (what any adapter, e.g. the seed's `IanLi233/Cautious_Qwen`, was trained
for): decode a few tokens and read the tag. Calibrated: the margin log P(<Toc>) − log P(<Safe>) at the token
where the two tags part, against a threshold chosen on held-out prompts so the over-refusal rate stays under
a target. A small draft's greedy tag is a threshold of 0 on that margin, rarely the right one. Probe (what
finetune-draft calibrates by default): the same threshold rule on the log-odds of a linear probe over two
middle layers of the draft's prefill (probe.py), which ranks prompts better than the one tag token.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
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
from smoothie_cli.progress import Progress, no_progress
from smoothie_cli.stats import Score, proportion

GATE_TOKENS = 6  # "<Toc>" / "<Safe>" are 3–4 Qwen tokens, plus room for a leading space or newline
CALIBRATION_FILE = "gate.json"  # in an adapter directory: the calibrated threshold
# the over-refusal a calibrated gate should stay under. The threshold is chosen so that the *upper* one-sided
# confidence bound (Clopper-Pearson) of over-refusal on the held-out calibration prompts stays under it, not
# the point estimate: a point estimate at the edge of a few hundred benign prompts is optimistic (2% there
# gave 4% on the test split, 5% gave 8%: README)
DEFAULT_MAX_OVER_REFUSAL = 0.03
DEFAULT_CONFIDENCE = 0.95


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
    # what the threshold applies to: "margin" (the first tag token's log-odds) or "probe" (the log-odds of
    # the linear probe in gate-probe.safetensors, probe.py)
    reading: str = "margin"
    # for an int8 reading (gate-int8.json): the quantisation its scores came from (models/int8.SCHEME);
    # None in gate.json, and in int8 readings written before per-token int8 (stale: not applied)
    quantization: str | None = None

    def save(self, directory: Path, name: str = CALIBRATION_FILE) -> Path:
        """Write it as `name` (gate.json, or gate-int8.json for the int8 draft's reading) in `directory`,
        atomically."""
        from smoothie_cli.models.atomic import write_text_atomic

        path = Path(directory) / name
        write_text_atomic(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    def describe(self) -> str:
        """The rule and what it gave on the calibration prompts, for a model card."""
        v = self.validation
        nan = float("nan")
        score = (
            "the log-odds of the gate probe (on two middle layers, cross-fitted on the train split)"
            if self.reading == "probe"
            else "log P(<Toc>) − log P(<Safe>) at the first tag token"
        )
        prompts = "out-of-fold train prompts" if self.reading == "probe" else "calibration prompts"
        return (
            f"toxic when {score} exceeds {self.threshold:.3f}, "
            f"chosen so that the {v.get('confidence') or 0.95:.0%} Clopper-Pearson upper bound of "
            f"over-refusal on the {prompts} is ≤ {self.max_over_refusal:.0%} (there: F1 "
            f"{v.get('f1', nan):.3f}, recall {v.get('recall', nan):.3f}, over-refusal "
            f"{v.get('over_refusal', nan):.3f}, bound {v.get('over_refusal_upper', nan):.3f})"
        )

    @classmethod
    def load(cls, directory: str | Path | None, name: str = CALIBRATION_FILE) -> GateCalibration | None:
        """The calibration stored in a draft's directory (`name`: gate.json, or gate-int8.json for the int8
        draft's own reading), or None (a model tuned elsewhere: read greedily).

        The threshold must be a finite number: NaN would let every prompt through, ±inf would pass or
        refuse all of them.
        """
        from typing import Annotated, Literal

        from pydantic import BaseModel, ConfigDict, Field

        from smoothie_cli.jsonfile import read_json, validate

        class GateFile(BaseModel):
            model_config = ConfigDict(extra="forbid")
            threshold: Annotated[float, Field(allow_inf_nan=False)]
            max_over_refusal: Annotated[float, Field(ge=0.0, le=1.0)]
            validation: dict[str, float | None] = Field(default_factory=dict)
            reading: Literal["margin", "probe"] = "margin"
            quantization: str | None = None

        if directory is None or not (Path(directory) / name).is_file():
            return None
        path = Path(directory) / name
        try:
            checked = validate(GateFile, read_json(path, "gate calibration"), name)
        except SmoothieError as error:
            raise SmoothieError(
                f"{path} is not a gate calibration ({error}); delete it to read the gate greedily"
            ) from None
        return cls(checked.threshold, checked.max_over_refusal, dict(checked.validation), checked.reading,
                   checked.quantization)  # fmt: skip


@functools.lru_cache(maxsize=4096)  # calibrate asks for the same few counts once per candidate threshold
def binomial_upper_bound(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on a rate after `successes` in `n` trials.

    The p with P(X ≤ successes | n, p) = 1 − confidence, found by bisection on the exact binomial CDF
    (hand-written: scipy is not a dependency, and 60 bisections of an O(n) sum are instant at these sizes).
    """
    if n <= 0:
        return 1.0
    if successes >= n:
        return 1.0
    alpha = 1 - confidence

    def cdf(p: float) -> float:
        if p <= 0:
            return 1.0
        if p >= 1:
            return 0.0
        log_p, log_q = math.log(p), math.log1p(-p)
        return sum(
            math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p
                     + (n - k) * log_q)
            for k in range(successes + 1)
        )  # fmt: skip

    low, high = successes / n, 1.0
    for _ in range(60):  # cdf falls as p grows
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) > alpha else (low, middle)
    return high


def calibrate(
    margins: Sequence[float],
    labels: Sequence[str],
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL,
    confidence: float | None = DEFAULT_CONFIDENCE,
    reading: str = "margin",
) -> GateCalibration:
    """The threshold with the best F1 among those whose over-refusal on these prompts is at most
    `max_over_refusal` — with `confidence`, its one-sided Clopper-Pearson upper bound, so the rate on new
    prompts stays under the target with that confidence; with None, the point estimate.

    Thresholds sit halfway between neighbouring margins, so a prompt never lands exactly on one.
    """
    if not 0 <= max_over_refusal <= 1:
        raise SmoothieError(f"--max-over-refusal must be in [0, 1], not {max_over_refusal}")
    if confidence is not None and not 0 < confidence < 1:
        raise SmoothieError(f"the calibration confidence must be in (0, 1), not {confidence}")
    toxic = [label == "toxic" for label in labels]
    if not any(toxic) or all(toxic):
        raise SmoothieError("calibrating the gate needs both toxic and safe prompts")
    values = sorted(set(margins))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1.0]
    safe_margins = [m for m, t in zip(margins, toxic) if not t]
    allowed = _most_flagged(len(safe_margins), max_over_refusal, confidence)
    best: tuple[float, float, float] | None = None  # (f1, recall, -threshold)
    chosen = candidates[-1]
    for threshold in candidates:
        if sum(m > threshold for m in safe_margins) > allowed:
            continue
        flagged = [m > threshold for m in margins]
        key = (f1(toxic, flagged), _rate(flagged, toxic), -threshold)
        if best is None or key > best:
            best, chosen = key, threshold
    flagged = [m > chosen for m in margins]
    validation = {
        "f1": f1(toxic, flagged),
        "recall": _rate(flagged, toxic),
        "over_refusal": _rate(flagged, [not t for t in toxic]),
        "n": len(labels),
        "auprc": average_precision(margins, toxic),
    }
    if confidence is not None:
        flagged_safe = sum(m > chosen for m in safe_margins)
        validation["over_refusal_upper"] = binomial_upper_bound(flagged_safe, len(safe_margins), confidence)
        validation["confidence"] = confidence
    return GateCalibration(round(chosen, 6), max_over_refusal, validation, reading)


def _most_flagged(n: int, max_over_refusal: float, confidence: float | None) -> int:
    """The most of `n` safe prompts a threshold may flag and keep its over-refusal (bound) within
    `max_over_refusal`; −1 when even none is too many. The bound grows with the count, so one scan up from
    zero replaces a bound per candidate threshold (thousands of distinct counts with a fine-grained score)."""
    allowed = -1
    while allowed < n and _over_refusal_bound(allowed + 1, n, confidence) <= max_over_refusal + 1e-12:
        allowed += 1
    return allowed


def _over_refusal_bound(flagged: int, n: int, confidence: float | None) -> float:
    if confidence is None:
        return flagged / n if n else 0.0
    return binomial_upper_bound(flagged, n, confidence)


def average_precision(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the precision-recall curve as average precision: Σ (R_k − R_{k−1}) P_k over the distinct
    score thresholds, highest first (ties enter together; the same definition as scikit-learn's)."""
    total = sum(positive)
    if total == 0:
        return float("nan")
    pairs = sorted(zip(scores, positive), key=lambda x: -x[0])
    area, hits, seen, last_recall, index = 0.0, 0, 0, 0.0, 0
    while index < len(pairs):
        score = pairs[index][0]
        while index < len(pairs) and pairs[index][0] == score:
            hits += bool(pairs[index][1])
            seen += 1
            index += 1
        recall = hits / total
        area += (recall - last_recall) * hits / seen
        last_recall = recall
    return area


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """P(a random positive scores above a random negative), ties counting half (Mann-Whitney)."""
    pos = sorted(s for s, p in zip(scores, positive) if p)
    neg = sorted(s for s, p in zip(scores, positive) if not p)
    if not pos or not neg:
        return float("nan")
    import bisect

    wins = sum(bisect.bisect_left(neg, s) + 0.5 * (bisect.bisect_right(neg, s) - bisect.bisect_left(neg, s))
               for s in pos)  # fmt: skip
    return wins / (len(pos) * len(neg))


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
    probe: Any = None,
    batch_size: int = 64,
    token_budget: int = 1024,
    progress: Progress = no_progress,
    description: str = "reading the draft's tags",
) -> list[Gate]:
    """The gate (toxic / safe / untagged) for each prompt: greedy as at decoding time, or, with a
    `threshold`, the calibrated decision on the tag margin — or on the `probe`'s score (GateProbe) when
    given (never untagged)."""
    if threshold is not None:
        margins = gate_values(
            model, tokenizer, prompts, probe=probe, instruction=instruction, batch_size=batch_size,
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


def gate_values(model: Any, tokenizer: Any, prompts: Sequence[str], *, probe: Any = None,
                **kwargs: Any) -> list[float]:  # fmt: skip
    """What a calibrated gate thresholds: the `probe`'s log-odds (GateProbe) when given, else tag margins."""
    if probe is None:
        return tag_margins(model, tokenizer, prompts, **kwargs)
    from smoothie_cli.cautious.probe import probe_scores

    return probe_scores(model, tokenizer, prompts, probe, **kwargs)


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
    from smoothie_cli.generation.batched import masked_logits

    tags = tag_tokens(tokenizer)
    margins = [0.0] * len(prompts)
    for group, ids, mask, cache in _prompt_batches(
        model, tokenizer, prompts, instruction, tags.shared, batch_size, token_budget, progress, description
    ):
        device = next(model.parameters()).device
        # left padding sits between the shared prefix and each prompt: positions follow the mask
        logits = masked_logits(model, ids.to(device), mask.to(device), cache)
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


def gate_scores(
    labels: Sequence[str], gates: Sequence[Gate], seed: int = 0, margins: Sequence[float] | None = None
) -> dict[str, Score]:
    """Toxic is the positive class; a request counts as refused when the gate says toxic. With the tag
    `margins`, also the threshold-free AUPRC and ROC AUC (bootstrap 95% intervals)."""
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
    if margins is not None:
        scores["gate_auprc"] = _bootstrap(average_precision, list(margins), toxic, seed)
        scores["gate_auc"] = _bootstrap(roc_auc, list(margins), toxic, seed)
    return scores


def _bootstrap(metric: Any, scores: list[float], toxic: list[bool], seed: int, rounds: int = 200) -> Score:
    """A ranking metric with a percentile-bootstrap 95% interval."""
    n = len(toxic)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    rng = random.Random(seed)
    samples = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        value = metric([scores[i] for i in picks], [toxic[i] for i in picks])
        if not math.isnan(value):
            samples.append(value)
    samples.sort()
    if not samples:
        return Score(metric(scores, toxic), float("nan"), float("nan"), n)
    low = samples[int(0.025 * len(samples))]
    high = samples[max(int(0.975 * len(samples)) - 1, 0)]
    return Score(metric(scores, toxic), low, high, n)


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
