"""The draft's gate: one reader object, built once from a draft, that says whether a request is refused.

Three ways to read the gate. Greedy (what any adapter, e.g. the seed's `IanLi233/Cautious_Qwen`, was trained
for): decode a few tokens and read the tag. Calibrated margin: log P(<Toc>) − log P(<Safe>) at the token
where the two tags part, against a threshold chosen on held-out prompts so the over-refusal rate stays under
a target (calibration.py); a small draft's greedy tag is a threshold of 0 on that margin, rarely the right
one. Probe (what finetune-draft calibrates by default): the same threshold rule on the log-odds of a probe
over two middle layers of the draft's prefill (probe.py), which ranks prompts better than one tag token.

`GateReader` owns the threshold, the probe, the instruction and the refusal policy, and reads one request or
many through the same batched code (reading.DraftReading): a lone request is a batch of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from smoothie_cli.cautious.calibration import (
    CALIBRATION_FILE,
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_OVER_REFUSAL,
    GateCalibration,
    average_precision,
    binomial_upper_bound,
    calibrate,
    f1,
    gate_scores,
    roc_auc,
)
from smoothie_cli.cautious.conversation import INPUT_BUDGET, Conversation, gate_text
from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL, MODERATION_INSTRUCTION, Gate
from smoothie_cli.cautious.reading import (
    BATCH_SIZE,
    GATE_TOKENS,
    TOKEN_BUDGET,
    DraftReading,
    TagTokens,
    margin_of,
    tag_margins,
    tag_tokens,
)
from smoothie_cli.errors import UnknownChoice
from smoothie_cli.progress import Progress, no_progress

# the gate's statistics and readings, importable from here as before the split (calibration.py, reading.py)
__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_MAX_OVER_REFUSAL",
    "GATE_TOKENS",
    "Conversation",
    "GateCalibration",
    "GatePolicy",
    "GateReader",
    "TagTokens",
    "average_precision",
    "binomial_upper_bound",
    "calibrate",
    "classify",
    "f1",
    "gate_scores",
    "gate_text",
    "gate_values",
    "margin_of",
    "roc_auc",
    "tag_margins",
    "tag_tokens",
]  # fmt: skip

OnUntagged = Literal["continue", "refuse"]
ON_UNTAGGED: tuple[OnUntagged, ...] = ("continue", "refuse")


@dataclass(frozen=True)
class GatePolicy:
    """What a refused request gets, and whether a draft that writes no tag refuses."""

    refusal: str = DEFAULT_REFUSAL
    on_untagged: OnUntagged = "continue"

    def __post_init__(self) -> None:
        if self.on_untagged not in ON_UNTAGGED:
            raise UnknownChoice(self.on_untagged, ON_UNTAGGED, what="untagged policy", setting="on_untagged")

    def refuses(self, gate: Gate) -> bool:
        return gate == "toxic" or (gate == "untagged" and self.on_untagged == "refuse")


class GateReader:
    """Reads the gate of requests with `model` (the draft, or a float32 copy of an int8 draft).

    `threshold` None: the tag is read greedily; a number: toxic when the score is above it — the `probe`'s
    log-odds (probe.GateProbe) when given, else the tag margin. `reader` names the model in descriptions.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        threshold: float | None = None,
        probe: Any | None = None,
        instruction: str | None = None,
        policy: GatePolicy = GatePolicy(),
        reader: str = "the draft",
        batch_size: int = BATCH_SIZE,
        token_budget: int = TOKEN_BUDGET,
        input_budget: int = INPUT_BUDGET,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.threshold, self.probe, self.policy, self.reader = threshold, probe, policy, reader
        self.instruction = instruction or MODERATION_INSTRUCTION
        self.reading = DraftReading(
            model, tokenizer, self.instruction, batch_size, token_budget, input_budget
        )

    @property
    def kind(self) -> str:
        """greedy, margin or probe: what the gate reads."""
        if self.threshold is None:
            return "greedy"
        return "probe" if self.probe is not None else "margin"

    @property
    def forwards(self) -> int:
        """Forwards of the reading model so far (the instruction's, once, included)."""
        return self.reading.forwards

    @property
    def refusal(self) -> str:
        return self.policy.refusal

    def refuses(self, gate: Gate) -> bool:
        return self.policy.refuses(gate)

    def scores(self, conversations: Sequence[Conversation], progress: Progress = no_progress,
               description: str = "scoring the gate") -> list[float]:  # fmt: skip
        """What the threshold applies to, per request: the probe's log-odds, else the tag margin — the
        highest over the request's parts (conversation.parts: the whole, earlier user and system messages
        alone, forged sections apart), all read in the same batched prefill."""
        split = [self.reading.conversations.parts(c) for c in conversations]
        flat = [part for request in split for part in request]
        if self.probe is None:
            scores = self.reading.margins(flat, progress, description)
        else:
            scores = self.probe.scores(self.reading.features(flat, self.probe.spec, progress, description))
        out, at = [], 0
        for request in split:
            out.append(max(scores[at : at + len(request)]))
            at += len(request)
        return out

    def read(self, conversations: Sequence[Conversation], progress: Progress = no_progress,
             description: str = "gating") -> list[Gate]:  # fmt: skip
        """The gate of every request, read in batches (one prefill per batch with a threshold)."""
        if self.threshold is None:
            return self.reading.greedy(conversations, progress, description)
        threshold = self.threshold
        return [
            "toxic" if s > threshold else "safe" for s in self.scores(conversations, progress, description)
        ]

    def read_one(self, conversation: Conversation) -> Gate:
        return self.read([conversation])[0]

    def text(self, conversation: Conversation) -> str:
        """What the moderation prompt's input holds for a conversation (conversation.py: within the
        budget, markers neutralized)."""
        return self.reading.conversations.text(conversation)

    def summary(self) -> str:
        """How the gate is read, in words (every serve response says it)."""
        if self.threshold is None:
            return f"greedy tag, read by {self.reader}"
        score = "probe log-odds" if self.probe is not None else "margin"
        return f"calibrated {score} > {self.threshold:.4g}, read by {self.reader}"

    def describe(self) -> dict[str, Any]:
        """The reader as response and result metadata."""
        return {"gate_reading": self.kind if self.threshold is not None else None,
                "gate_threshold": self.threshold, "gate_reader": self.reader,
                "on_untagged": self.policy.on_untagged}  # fmt: skip


def classify(model: Any, tokenizer: Any, prompts: Sequence[str], *, threshold: float | None = None,
             probe: Any = None, progress: Progress = no_progress,
             description: str = "reading the draft's tags", **reading: Any) -> list[Gate]:  # fmt: skip
    """The gate (toxic / safe / untagged) for each prompt: greedy as at decoding time, or, with a
    `threshold`, the calibrated decision on the tag margin — or on the `probe`'s score (GateProbe) when
    given (never untagged). `reading`: the instruction, batch_size, token_budget (GateReader's)."""
    reader = GateReader(model, tokenizer, threshold=threshold, probe=probe, **reading)
    return reader.read(prompts, progress, description)


def gate_values(model: Any, tokenizer: Any, prompts: Sequence[str], *, probe: Any = None,
                progress: Progress = no_progress, description: str = "scoring the draft's tags",
                **reading: Any) -> list[float]:  # fmt: skip
    """What a calibrated gate thresholds: the `probe`'s log-odds (GateProbe) when given, else tag margins."""
    return GateReader(model, tokenizer, threshold=0.0, probe=probe, **reading).scores(
        prompts, progress, description
    )
