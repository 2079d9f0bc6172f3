"""How far the gate generalises: scores per moderation source, and leave-one-source-out training.

A hash split keeps prompts apart, not *styles*: a test prompt from the same source as the training prompts
tells little about a kind of request nobody trained on. Leave-one-source-out trains a draft without one
source family (its toxic and its safe rows, from both splits), calibrates on the rest, and scores it on
every row of that family, which it never saw; the jailbreak families are also scored for over-refusal on
the benign look-alikes of the test split. Steps and thresholds come from the calibration split only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.artifacts import open_draft
from smoothie_cli.cautious.calibration import GateCalibration, gate_scores
from smoothie_cli.cautious.conversation import GATE_FORMAT
from smoothie_cli.data.examples import Example
from smoothie_cli.errors import Conflict, UnknownChoice
from smoothie_cli.progress import Progress, no_progress

# the keys a per-source table shows, in order
SCORE_KEYS = ("gate_precision", "gate_recall", "gate_f1", "over_refusal", "gate_auprc")


def scores_from_margins(
    labels: Sequence[str], margins: Sequence[float], threshold: float
) -> dict[str, dict[str, Any]]:
    """gate_scores (with AUPRC/AUC) for margins read against `threshold`, as plain dicts."""
    gates = ["toxic" if m > threshold else "safe" for m in margins]
    scores = gate_scores(labels, gates, margins=margins)
    return {k: v.as_dict(k) | {"n": v.n} for k, v in scores.items()}


def by_source(
    examples: Sequence[Example], margins: Sequence[float], threshold: float
) -> dict[str, dict[str, Any]]:
    """Scores over all `examples` ("all") and per `meta.source` (a source with one label has F1 or
    over-refusal only: recall for toxic-only sources, over-refusal for safe-only ones)."""
    groups: dict[str, list[int]] = {"all": list(range(len(examples)))}
    for index, example in enumerate(examples):
        groups.setdefault(str(example.meta.get("source", "?")), []).append(index)
    return {
        name: scores_from_margins(
            [examples[i].label or "safe" for i in rows], [margins[i] for i in rows], threshold
        )
        for name, rows in groups.items()
    }


def score_draft_by_source(
    spec: str, dataset: str = "moderation-test", progress: Progress = no_progress
) -> dict[str, Any]:
    """Load a draft with its gate.json and score it per source on a moderation dataset (float32)."""
    from smoothie_cli.data.datasets import load_dataset

    draft = open_draft(spec, progress, needs="per-source scores")
    calibration = draft.require_calibration()
    examples = load_dataset(dataset, progress=progress).examples
    margins = draft.reader().scores([e.messages() for e in examples], progress)
    return {
        "draft": spec,
        "dataset": dataset,
        "reading": calibration.reading,
        "threshold": calibration.threshold,
        "sources": by_source(examples, margins, calibration.threshold),
    }


def family_rows(family: str, progress: Progress = no_progress) -> list[Example]:
    """Every row of one source family (both splits, unbalanced): what a draft trained without it never saw."""
    from smoothie_cli.data.moderation import moderation_dataset

    return moderation_dataset(None, progress, only=[family], balance=False).examples


def look_alikes(exclude: str, progress: Progress = no_progress) -> list[Example]:
    """Benign look-alikes of jailbreaks from the test split (never trained on), of the other families."""
    from smoothie_cli.data.moderation import JAILBREAK_SOURCES, moderation_dataset

    others = [name for name in JAILBREAK_SOURCES if name != exclude]
    rows = moderation_dataset("test", progress, only=others, balance=False).examples
    return [e for e in rows if e.label == "safe"]


def leave_one_source_out(
    family: str,
    out: Path,
    settings: Any,
    *,
    force: bool = False,
    resume: bool = False,
    eval_limit: int = 0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Train a draft without `family` (FinetuneSettings `settings`), then score it on that family."""
    from dataclasses import replace

    from smoothie_cli.cautious.finetune import finetune_draft
    from smoothie_cli.data.moderation import JAILBREAK_SOURCES, SOURCES

    if family not in SOURCES:
        raise UnknownChoice(family, SOURCES, what="source family", setting="family")
    no_split = Conflict("leave-one-source-out needs a calibration split; give more than 0",
                        setting="calibration_percent")  # fmt: skip
    if settings.calibration_percent == 0:  # before minutes of training, not after
        raise no_split
    settings = replace(settings, exclude_sources=(family,))
    # no test-split metrics (eval_limit 0): the base model's zero-shot pass alone takes ~10 min on 2 cores
    report = finetune_draft(
        settings.base, out, settings, force=force, resume=resume, eval_limit=eval_limit, progress=progress
    )
    if GateCalibration.load(out) is None:
        raise no_split
    draft = open_draft(str(out), progress)
    calibration = draft.require_calibration()
    held = family_rows(family, progress)
    extra = look_alikes(family, progress) if family in JAILBREAK_SOURCES else []
    margins = draft.reader().scores([e.messages() for e in held + extra], progress,
                                    f"scoring held-out {family}")  # fmt: skip
    held_margins, extra_margins = margins[: len(held)], margins[len(held) :]
    result: dict[str, Any] = {
        "family": family,
        "steps": report["steps"],
        "train_seconds": report["train_seconds"],
        "threshold": calibration.threshold,
        "held_out": scores_from_margins(
            [e.label or "safe" for e in held], held_margins, calibration.threshold
        ),
        "in_domain_test": report["metrics"]["calibrated"],  # None unless eval_limit
    }
    if extra:
        flagged = [m > calibration.threshold for m in extra_margins]
        result["look_alike_over_refusal"] = sum(flagged) / len(flagged)
        result["look_alikes"] = len(flagged)
    return result


def probe_without(
    features: Any,
    rows: Sequence[tuple[str, str]],
    held: Any,
    held_labels: Sequence[str],
    look_alikes: Any | None,
    spec: Any,
    groups: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """A held-out family read by the probe fitted and calibrated (out of fold) on the other rows: `features`
    of `rows` (prompt, label) to fit on, the family's features `held`, and benign `look_alikes` (or None)."""
    from smoothie_cli.cautious.probe import fit_and_calibrate

    keys, labels = [p for p, _ in rows], [label for _, label in rows]
    probe, calibration = fit_and_calibrate(features, keys, labels, spec, groups=groups)
    result: dict[str, Any] = {
        "threshold": calibration.threshold,
        "held_out": scores_from_margins(held_labels, probe.scores(held), calibration.threshold),
    }
    if look_alikes is not None:
        flagged = [s > calibration.threshold for s in probe.scores(look_alikes)]
        result["look_alike_over_refusal"] = sum(flagged) / len(flagged)
        result["look_alikes"] = len(flagged)
    return result


FEATURES_FILE = "features.safetensors"  # in a probe holdout's output folder: the features read so far


def cached_features(
    read: Callable[[list[str]], Any], texts: Sequence[str], path: Path, key: str, chunk: int = 256
) -> Any:
    """The features of `texts` (rows of one tensor), read by `read` only for texts `path` does not hold yet.

    `path` keeps every row read (by the sha256 of its text) with `key` (the draft and the probe's layers):
    a file of another key is read again from nothing. It is rewritten whole and renamed after every `chunk`
    texts, so an interrupted run loses at most one chunk and resumes where it stopped; a damaged file is
    read again. Rows are kept to the last digit, so a resumed run fits the same probes."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save

    from smoothie_cli.atomic import write_bytes_atomic

    digest = {text: hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts}
    known: dict[str, Any] = {}
    if path.is_file():
        # safetensors raises several types on a damaged file: it is read again from nothing
        with suppress(Exception), safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("key") == key:
                rows = handle.get_tensor("features")
                known = dict(zip(json.loads(metadata["texts"]), rows, strict=True))
    missing = [text for text in digest if digest[text] not in known]
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        for text, row in zip(part, read(part), strict=True):
            known[digest[text]] = row
        names = list(known)
        tensors = {"features": torch.stack([known[n] for n in names]).contiguous()}
        write_bytes_atomic(path, save(tensors, metadata={"key": key, "texts": json.dumps(names)}))
    return torch.stack([known[digest[text]] for text in texts])


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def probe_holdout(
    families: Sequence[str],
    draft: str,
    progress: Progress = no_progress,
    output: Path | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Leave-one-source-out for the probe gate: for each family, the probe fitted and calibrated (out of
    fold) on the train split without it, scored on every row of the family and on the other families'
    look-alikes. No draft is trained: the probe reads layers the LoRA leaves alone (probe.py), so the
    features are the same whichever adapter sits above them, and one feature pass serves every family.

    With `output`, the run resumes: features are kept in `output`/features.safetensors as they are read,
    and each family's result in `output`/probe-FAMILY.json as it is done (its six fits are most of a
    family's time); a result is reused only for the same draft, probe layers and rows, unless `force`."""
    import torch

    from smoothie_cli.atomic import write_text_atomic
    from smoothie_cli.cautious.probe import (
        calibration_groups,
        check_layers_below_adapter,
        probe_features,
        probe_layers,
    )
    from smoothie_cli.data.moderation import JAILBREAK_SOURCES, SOURCES, moderation_dataset

    for family in families:
        if family not in SOURCES:
            raise UnknownChoice(family, SOURCES, what="source family", setting="family")
    loaded = open_draft(draft, progress)
    model, tokenizer = loaded.model, loaded.tokenizer
    spec = probe_layers(model)
    check_layers_below_adapter(model, spec)
    train = moderation_dataset("train", progress).examples
    held = {f: family_rows(f, progress) for f in families}
    extra = {f: look_alikes(f, progress) if f in JAILBREAK_SOURCES else [] for f in families}
    rows = [*train, *(r for f in families for r in held[f] + extra[f])]
    conversations = {e.identity: e.messages() for e in rows}  # features are kept by the row's identity
    texts = list(conversations)

    def read(part: list[str]) -> Any:
        return probe_features(model, tokenizer, [conversations[t] for t in part], spec, progress=progress,
                              description="reading features for leave-one-source-out")  # fmt: skip

    key = f"{draft} | {spec.describe()} | {GATE_FORMAT}"
    features = read(texts) if output is None else cached_features(read, texts, output / FEATURES_FILE, key)
    index = {text: i for i, text in enumerate(texts)}

    def of(rows: Sequence[Example]) -> Any:
        return features[torch.tensor([index[e.identity] for e in rows], dtype=torch.long)]

    def labelled(rows: Sequence[Example]) -> list[tuple[str, str]]:
        return [(e.split_key, e.label or "safe") for e in rows]

    results = []
    for family in families:
        # the balanced train split without the family's rows (the row balance is kept as it was drawn)
        kept = [e for e in train if e.meta.get("source") != family]
        fingerprint = _fingerprint(key, labelled(kept), labelled(held[family]), labelled(extra[family]))
        done = None if output is None else output / f"probe-{family}.json"
        if done is not None and done.is_file() and not force:
            with suppress(ValueError, OSError):
                previous = json.loads(done.read_text())
                if previous.get("fingerprint") == fingerprint:
                    results.append(previous)
                    continue
        result: dict[str, Any] = {
            "family": family,
            "reading": "probe",
            "steps": 0,
            "train_seconds": 0.0,
            **probe_without(
                of(kept), labelled(kept), of(held[family]), [e.label or "safe" for e in held[family]],
                of(extra[family]) if extra[family] else None, spec,
                calibration_groups(kept),
            ),
            "in_domain_test": None,
            "fingerprint": fingerprint,
        }  # fmt: skip
        if done is not None:
            write_text_atomic(done, json.dumps(result, indent=2))
        results.append(result)
    return results
