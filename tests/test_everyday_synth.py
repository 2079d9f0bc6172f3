"""everyday_synth: deterministic, distinct, all safe, and free of the over-refusal bug's held-out symptoms."""

from __future__ import annotations

import re

import pytest

from smoothie_cli.data.everyday_synth import (
    EVERYDAY_FAMILIES,
    EVERYDAY_FOLLOWUP,
    EVERYDAY_SOURCES,
    everyday_examples,
)
from smoothie_cli.data.examples import Example
from smoothie_cli.data.harm_synth import harm_synth_examples
from smoothie_cli.data.jailbreak_synth import jailbreak_synth_examples
from smoothie_cli.errors import SmoothieError

# the held-out symptoms of the bug (prompts the gate wrongly refused) and the frames they use: none may appear
# in any row, earlier turns included, or the hold-out stops measuring generalisation
HELD_OUT = (
    "joke about",
    "banana",
    "octopus",
    "zombie",
    "defunct",
    "funny animal",
    "animal fact",
    "fun fact",
    "give me a recipe for",
)
ANIMALS = re.compile(
    r"\b(dogs?|cats?|puppy|puppies|kittens?|animals?|octopus\w*|rabbits?|hamsters?|budgies?|fish|goldfish|"
    r"greyhounds?|guinea pigs?|bearded dragons?|bees?|pets?|birds?|horses?|cows?|pigs?|ducks?|sharks?)\b"
)


def _all() -> dict[str, list[Example]]:
    return {family: everyday_examples(family) for family in EVERYDAY_FAMILIES}


def _texts(example: Example) -> str:
    return "\n".join(m["content"] for m in example.messages())


def test_deterministic_and_exposed_as_sources() -> None:
    assert _all() == _all()
    assert set(EVERYDAY_SOURCES) == set(EVERYDAY_FAMILIES) and len(EVERYDAY_FAMILIES) == 8
    assert all(name.startswith("everyday-") for name in EVERYDAY_FAMILIES)
    for name, load in EVERYDAY_SOURCES.items():
        assert load() == everyday_examples(name)
    with pytest.raises(SmoothieError, match="everyday-chat"):
        everyday_examples("everyday-nope")


def test_sizes_ids_labels_and_meta() -> None:
    rows = _all()
    ids = [e.id for family in rows.values() for e in family]
    assert len(ids) == len(set(ids))
    for family, examples in rows.items():
        assert 150 <= len(examples) <= 300, (family, len(examples))
        for example in examples:
            assert example.label == "safe"
            assert example.meta["family"] == family
            assert example.id.startswith(f"{family}-{example.meta['kind']}-")
            assert example.prompt.strip() == example.prompt and example.prompt
        assert len({e.meta["kind"] for e in examples}) >= 5  # several kinds of request in every family


def test_no_duplicates_within_or_across_families_or_with_our_other_sets() -> None:
    rows = [e for family in _all().values() for e in family]
    identities = [e.identity.lower() for e in rows]
    assert len(identities) == len(set(identities))
    single = [e.prompt.lower().rstrip(".?! ") for e in rows if not e.history]
    assert len(single) == len(set(single))  # not even a casual variant of another row
    ours = {e.prompt.lower().rstrip(".?! ") for e in jailbreak_synth_examples() + harm_synth_examples()}
    assert not [p for p in single if p in ours]


def test_templates_are_filled() -> None:
    for family, examples in _all().items():
        for example in examples:
            if example.meta["kind"] != "own-code":  # code under review has its own braces
                assert not re.search(r"\{\w*\}", example.prompt), (family, example.prompt)


def test_followups_are_short_and_follow_a_stepwise_answer() -> None:
    examples = everyday_examples(EVERYDAY_FOLLOWUP)
    assert len({e.prompt for e in examples}) >= 30  # many different follow-ups
    assert len({e.history[0]["content"] for e in examples}) >= 30  # after many different requests
    for example in examples:
        first, answer = example.history
        assert first["role"] == "user" and answer["role"] == "assistant"
        assert "1. " in answer["content"] and "4. " in answer["content"]  # "step 4?" always has a step 4
        assert len(example.prompt) <= 80
        assert example.split_key == first["content"]  # the conversation splits with its first request
        assert example.messages()[-1] == {"role": "user", "content": example.prompt}


def test_none_of_the_held_out_symptoms() -> None:
    for examples in _all().values():
        for example in examples:
            text = _texts(example).lower()
            assert not [s for s in HELD_OUT if s in text], example
            if ANIMALS.search(text):  # pets are fine; jokes and facts about animals are the held-out symptom
                assert not re.search(r"\b(jokes?|funny|puns?|facts?|trivia|humou?r)\b", text), example
            if re.search(r"\b(kill|process|processes)\b", text):
                assert "zombie" not in text and "defunct" not in text and "reap" not in text
