"""Leave-one-source-out for the gate, family by family and resumable: the probe refitted (or a draft trained)
without a family, scored on that family."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smoothie_cli.atomic import write_text_atomic
from smoothie_cli.errors import UnknownChoice
from smoothie_cli.progress import Progress, no_progress

READINGS = ("probe", "margin")


def holdout_families(family: Sequence[str] | None) -> list[str]:
    """The families to hold out: the given ones, where a group name stands for its families ('all': every
    source; 'jailbreaks', 'everyday', 'conversations'); none given: every jailbreak family."""
    from smoothie_cli.data.moderation import FAMILY_GROUPS, JAILBREAK_SOURCES

    chosen: list[str] = []
    for name in family or JAILBREAK_SOURCES:
        chosen += FAMILY_GROUPS.get(name, (name,))
    return list(dict.fromkeys(chosen))


def gate_holdout(
    families: Sequence[str],
    output: Path,
    *,
    reading: str = "probe",
    draft: str = "embedded:qwen2.5-coder-0.5b-cautious",
    base: str | None = None,
    steps: int = 200,
    resume: bool = False,
    force: bool = False,
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """One result per family. `probe`: refit the gate probe of `draft` without each family (probe.json);
    `margin`: train a draft from `base` without each family, one FAMILY.json each (finished ones are kept
    unless `force`, so an interrupted run resumes family by family)."""
    from smoothie_cli.cautious.finetune import FinetuneSettings
    from smoothie_cli.cautious.holdout import leave_one_source_out, probe_holdout
    from smoothie_cli.config import DEFAULT_MODEL

    if reading not in READINGS:
        raise UnknownChoice(reading, READINGS, what="gate reading", setting="reading")
    output.mkdir(parents=True, exist_ok=True)
    if reading == "probe":
        results = probe_holdout(list(families), draft, progress, output, force)
        write_text_atomic(output / "probe.json", json.dumps(results, indent=2))
        return results
    results = []
    for name in families:
        done = output / f"{name}.json"
        if done.is_file() and not force:
            results.append(json.loads(done.read_text()))
            continue
        settings = FinetuneSettings(base=base or DEFAULT_MODEL, steps=steps)
        result = leave_one_source_out(
            name, output / name, settings, force=force or not resume, resume=resume, progress=progress
        )
        write_text_atomic(done, json.dumps(result, indent=2))
        results.append(result)
    return results
