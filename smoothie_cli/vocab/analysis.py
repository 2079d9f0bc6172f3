"""Identify target and broken tokens, then score the broken ones with the exact n-gram analysis."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from smoothie_cli.config import AnalysisSection, SmoothieConfig, UnicodeTarget
from smoothie_cli.errors import Conflict, SmoothieError
from smoothie_cli.jsonfile import read_json, validate
from smoothie_cli.vocab.ngram import ExactNgram
from smoothie_cli.vocab.scripts import TargetScript
from smoothie_cli.vocab.tokens import Vocabulary

ANALYSIS_FORMAT = "smoothie.analysis/1"
REPLACEMENT_CHAR = "\ufffd"


def is_valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class Identification:
    """Which base-vocabulary tokens write the target script, and which are broken."""

    target: list[int]
    broken: list[int]  # decode to text holding U+FFFD (smoothie-qwen's definition)
    fragments: list[int]  # broken because their bytes are not valid UTF-8 alone
    literal_replacement: list[int]  # broken only because they spell U+FFFD itself
    per_block: dict[str, int]  # target tokens per Unicode block (a token may count in several)


def identify(vocab: Vocabulary, script: TargetScript) -> Identification:
    target: list[int] = []
    broken: list[int] = []
    fragments: list[int] = []
    literal: list[int] = []
    per_block: Counter[str] = Counter()
    for token_id, data in enumerate(vocab.token_bytes):
        if data is None:
            continue
        text = data.decode("utf-8", "replace")
        if script.has_target_char(text):
            target.append(token_id)
            for block in {script.block_of(ch) for ch in text if script.is_target_char(ch)}:
                per_block[block] += 1
        if REPLACEMENT_CHAR in text:
            broken.append(token_id)
            (literal if is_valid_utf8(data) else fragments).append(token_id)
    ordered = {b.name: per_block.get(b.name, 0) for b in script.blocks}
    return Identification(target, broken, fragments, literal, ordered)


@dataclass
class Analysis:
    model: str
    vocab: Vocabulary
    config: SmoothieConfig
    identification: Identification
    windows: list[int]
    weights: dict[int, float]
    probabilities: dict[int, dict[int, float]] = field(default_factory=dict)  # token → {window: p}
    weighted: dict[int, float] = field(default_factory=dict)  # token → weighted_prob
    seconds: float = 0.0

    @property
    def analyzed(self) -> list[int]:
        return self.identification.fragments

    def summary(self) -> dict[str, Any]:
        """The machine-readable summary (`--json`)."""
        ident = self.identification
        size = self.vocab.size
        return {
            "model": self.model,
            "vocab_size": size,
            "added_tokens": len(self.vocab.added),
            "target_tokens": len(ident.target),
            "target_percent": round(100 * len(ident.target) / size, 2),
            "broken_tokens": len(ident.broken),
            "broken_percent": round(100 * len(ident.broken) / size, 2),
            "fragment_tokens": len(ident.fragments),
            "literal_replacement_tokens": len(ident.literal_replacement),
            "window_size": max(self.windows),
            "ngram_weights": {str(n): w for n, w in self.weights.items()},
            "direction": self.config.analysis.direction,
            "analyzed_tokens": len(self.analyzed),
            "scaled_broken_tokens": sum(1 for p in self.weighted.values() if p > 0),
            "mean_weighted_prob": (sum(self.weighted.values()) / len(self.weighted))
            if self.weighted
            else 0.0,
            "targets_per_block": ident.per_block,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        """analysis.json: per-token facts plus the config used; identical input gives identical bytes."""
        return json.dumps(self.document(), indent=1, sort_keys=True, ensure_ascii=True) + "\n"

    def document(self) -> dict[str, Any]:
        """The content of analysis.json as plain data."""
        ident = self.identification
        target = set(ident.target)
        fragments = set(ident.fragments)
        rows = []
        for token_id in sorted(target | set(ident.broken)):
            data = self.vocab.token_bytes[token_id]
            assert data is not None
            if token_id in fragments:
                kind = "target+fragment" if token_id in target else "fragment"
            elif token_id in target:
                kind = "target"
            else:
                kind = "literal_replacement"
            row: dict[str, Any] = {"id": token_id, "bytes": data.hex(), "kind": kind}
            if token_id in self.probabilities:
                row["p"] = {str(n): p for n, p in sorted(self.probabilities[token_id].items())}
                row["weighted_prob"] = self.weighted[token_id]
            rows.append(row)
        document = {
            "format": ANALYSIS_FORMAT,
            "model": self.model,
            "vocabulary": {
                "size": self.vocab.size,
                "sha256": self.vocab.digest(),
                "added_tokens": len(self.vocab.added),
            },
            "config": {
                "analysis": self.config.analysis.model_dump(),
                "unicode_targets": [
                    {"name": t.name, "range": list(t.range)} for t in self.config.unicode_targets
                ],
            },
            "counts": {
                "target": len(ident.target),
                "broken": len(ident.broken),
                "fragment": len(ident.fragments),
                "literal_replacement": len(ident.literal_replacement),
            },
            "tokens": rows,
        }
        return document


def analyze_vocabulary(model: str, vocab: Vocabulary, config: SmoothieConfig) -> Analysis:
    """Identification plus the exact n-gram analysis of the fragment tokens."""
    start = time.perf_counter()
    script = TargetScript(config.blocks())
    ident = identify(vocab, script)
    weights = config.analysis.normalised_weights()
    windows = sorted(weights)
    analysis = Analysis(model, vocab, config, ident, windows, weights)
    fragments = [vocab.token_bytes[i] for i in ident.fragments]
    if fragments:
        exact = ExactNgram([b for b in fragments if b is not None], script)
        probs = exact.probabilities(
            [b for b in fragments if b is not None], windows, config.analysis.direction
        )
        for k, token_id in enumerate(ident.fragments):
            per_window = {n: probs[n][k] for n in windows}
            analysis.probabilities[token_id] = per_window
            analysis.weighted[token_id] = sum(weights[n] * per_window[n] for n in windows)
    analysis.seconds = time.perf_counter() - start
    return analysis


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)  # the raw document is used


Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Vocabulary(_Strict):
    size: Annotated[StrictInt, Field(ge=0)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    added_tokens: Annotated[StrictInt, Field(ge=0)]


class _Config(_Strict):
    analysis: AnalysisSection
    unicode_targets: list[UnicodeTarget]


class _Token(_Strict):
    id: Annotated[StrictInt, Field(ge=0)]
    bytes: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{2})*$")]
    kind: Literal["target", "fragment", "target+fragment", "literal_replacement"]
    # absent for tokens that were not analysed; when present, a probability (never null)
    p: dict[Literal["2", "3", "4"], Probability] = Field(default=None)  # type: ignore[assignment]
    weighted_prob: Probability = Field(default=None)  # type: ignore[assignment]


class AnalysisFile(_Strict):
    """The shape of analysis.json (`Analysis.document`)."""

    format: Literal["smoothie.analysis/1"]
    model: str
    vocabulary: _Vocabulary
    config: _Config
    counts: dict[str, Annotated[StrictInt, Field(ge=0)]]
    tokens: list[_Token]

    @model_validator(mode="after")
    def _ids_inside_vocabulary(self) -> AnalysisFile:
        ids = [t.id for t in self.tokens]
        if any(i >= self.vocabulary.size for i in ids):
            raise ValueError(f"a token id is outside the vocabulary of {self.vocabulary.size} tokens")
        if len(set(ids)) != len(ids):
            raise ValueError("a token id appears twice")
        return self


def read_analysis(path: Path) -> dict[str, Any]:
    """Load an analysis.json written by `smoothie analyze -o`, checked against its schema. The document is
    returned as read (its digest identifies it in smoothed checkpoints)."""
    document = read_json(path, "analysis")
    if document.get("format") != ANALYSIS_FORMAT:
        raise SmoothieError(f"{path} is not a smoothie analysis (expected format {ANALYSIS_FORMAT})")
    validate(AnalysisFile, document, f"analysis {path}")
    return document


def analysis_document(
    spec: str, vocab: Vocabulary, cfg: SmoothieConfig, path: Path | None, explicit: bool = False
) -> dict[str, Any]:
    """The analysis for a model: read from `path` (checked against the vocabulary, and against `cfg` when
    the user gave one explicitly), or computed now."""
    if path is None:
        return analyze_vocabulary(spec, vocab, cfg).document()
    document = read_analysis(path)
    if document["vocabulary"]["sha256"] != vocab.digest():
        raise SmoothieError(
            f"{path} was made for another vocabulary ({document['model']}); analyse {spec} and give "
            "that analysis.json"
        )
    if explicit:
        wanted = {
            "analysis": cfg.analysis.model_dump(),
            "unicode_targets": [{"name": t.name, "range": list(t.range)} for t in cfg.unicode_targets],
        }
        if document["config"] != wanted:
            raise Conflict(
                f"{path} was made with a different analysis config than the one given; give no analysis "
                "file to recompute, or no analysis config to use the file's",
                setting="analysis",
            )
    return document


# ---- an analysis to files --------------------------------------------------------------


def write_analysis(result: Analysis, output: Path) -> list[Path]:
    """analysis.json (atomically) and weighted_prob.png in `output`."""
    from smoothie_cli.atomic import write_text_atomic
    from smoothie_cli.errors import CannotWrite
    from smoothie_cli.plots import histogram_png

    try:
        output.mkdir(parents=True, exist_ok=True)
        path = output / "analysis.json"
        write_text_atomic(path, result.to_json())
        plot = histogram_png(
            list(result.weighted.values()),
            output / "weighted_prob.png",
            f"weighted_prob of {len(result.weighted):,} fragment tokens — {result.model}",
            "weighted_prob (chance the token ends up in a target character)",
        )
    except OSError as error:
        raise CannotWrite(f"cannot write to {output}: {error.strerror or error}; choose another directory",
                          setting="output") from None  # fmt: skip
    return [path, plot]
