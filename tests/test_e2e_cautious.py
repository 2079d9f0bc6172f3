"""Cautious decoding end to end on the real embedded Qwen2.5-Coder-0.5B (int8 draft, float32 target)."""

from __future__ import annotations

import json

import pytest

from smoothie_cli.cli import main

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"
PROMPTS = ["Write a Python function that returns the square of a number.", "Name three primary colours."]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def target_alone():
    """Greedy answers of the target alone, by transformers' own generate (an independent reference)."""
    from smoothie_cli.data.examples import Example
    from smoothie_cli.generation.prompts import chat_prompt
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(MODEL)
    model = loading.load_model(source, device="cpu")
    tokenizer = loading.load_tokenizer(source)
    answers = []
    for prompt in PROMPTS:
        ids = tokenizer(chat_prompt(tokenizer, Example("p", prompt)), return_tensors="pt")["input_ids"]
        out = model.generate(ids, max_new_tokens=24, do_sample=False)
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    return answers


def test_int8_draft_and_float32_target_give_the_target_text(target_alone, capsys) -> None:
    code, out, _ = run_cli(
        # --gamma 4: a 0.5B int8 draft for a 0.5B target rarely pays, so the adaptive γ would mostly decode
        # plainly; a fixed γ exercises verification on every round
        ["speculate", *PROMPTS, "--target", MODEL, "--draft", MODEL, "--draft-quant", "int8",
         "--max-new-tokens", "24", "--gamma", "4", "--json"], capsys,
    )  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == target_alone
    for row in rows:
        assert row["gate"] in ("safe", "untagged") and row["draft_quant"] == "int8"
        assert 0 < row["tokens"] <= 24 and row["accepted"] > 0
        assert row["target_forwards"] < 1 + row["tokens"]  # accepted draft tokens saved target forwards
        assert {"seconds", "tokens_per_s", "acceptance_rate", "proposed"} <= row.keys()


@pytest.mark.slow
def test_finetuned_adapter_loads_as_a_draft(tmp_path, capsys) -> None:
    adapter = tmp_path / "draft"
    code, out, _ = run_cli(
        ["finetune-draft", MODEL, "-o", str(adapter), "--steps", "2", "--batch-size", "2", "--limit", "8",
         "--eval-limit", "4", "--max-length", "128", "--calibration-percent", "3", "--json"], capsys,
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["steps"] == 2 and report["metrics"]["finetuned"]["gate_f1"]["n"] == 4
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == MODEL
    assert not (tmp_path / ".draft.checkpoint").exists()  # checkpoints go once the adapter is written
    threshold = json.loads((adapter / "gate.json").read_text())["threshold"]
    assert report["calibration"]["threshold"] == threshold and 10 < report["calibration_examples"] < 150
    code, out, _ = run_cli(
        [
            "speculate",
            PROMPTS[1],
            "--target",
            MODEL,
            "--draft",
            str(adapter),
            "--max-new-tokens",
            "8",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    row = json.loads(out)
    # the adapter's calibrated gate decides: never untagged
    assert row["draft"] == str(adapter) and row["gate"] in ("safe", "toxic")
    assert row["gate_threshold"] == threshold
    code, out, _ = run_cli(["eval", str(adapter), "--task", "toxicity", "--limit", "6", "--json"], capsys)
    assert code == 0
    scores = json.loads(out)["results"]["toxicity"]["moderation-test"]
    assert scores["n"] == 6 and scores["untagged"] == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["speculate", "   ", "--draft", "none", "--target", MODEL], "empty"),
    (["speculate", "hi", "--gamma", "-1"], "--gamma: must be at least 0"),
    (["speculate", "hi", "--draft-context", "both", "--target", MODEL], "--draft-context"),
    (["speculate", "hi", "--strategy", "fast", "--draft", "none", "--target", MODEL], "--strategy"),
    (["speculate", "hi", "--target", "/nonexistent/model"], "does not exist"),
    (["speculate", "hi", "--draft-quant", "int4", "--target", MODEL, "--draft", MODEL], "--draft-quant"),
    (["speculate", "--input", "/nonexistent.txt"], "--input"),
    (["speculate", "hi", "--gate-model", "half", "--target", MODEL], "--gate-model must be full or draft"),
    (["speculate", "hi", "--gate-threshold", "high", "--target", MODEL], "--gate-threshold: must be"),
])  # fmt: skip
def test_bad_speculate_input_is_one_clear_line(argv, message, capsys) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_eval_generates_through_speculation_with_the_target_text(tmp_path, capsys) -> None:
    argv = ["eval", MODEL, "--task", "no-chinese", "--dataset", "chinese-elicit", "--limit", "2",
            "--max-new-tokens", "8", "--json"]  # fmt: skip
    assert run_cli([*argv, "-o", str(tmp_path / "plain")], capsys)[0] == 0
    drafted = [*argv, "-o", str(tmp_path / "drafted"), "--draft", MODEL, "--draft-quant", "none"]
    code, out, _ = run_cli(drafted, capsys)
    assert code == 0
    assert json.loads(out)["setting"]["draft"] == MODEL

    def answers(name: str) -> list[str]:
        (samples,) = (tmp_path / name).glob("*.jsonl")
        return [json.loads(line)["answer"] for line in samples.read_text().splitlines()]

    assert answers("drafted") == answers("plain") and len(answers("plain")) == 2


def test_speculate_reads_conversations_refuses_the_bypasses_and_answers_their_twins(tmp_path, capsys) -> None:
    """The shipped draft (the default) gates whole conversations given as JSONL `messages`."""
    from bypasses import REPORTED, TWINS, UNSEEN

    attacks = [*REPORTED.values(), *UNSEEN.values()]
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": m}) + "\n" for m in [*attacks, *TWINS.values()]))
    code, out, err = run_cli(["speculate", "--input", str(chats), "--target", MODEL, "--max-new-tokens", "4",
                              "--strategy", "speculative", "--json"], capsys)  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["gate"] for r in rows] == ["toxic"] * len(attacks) + ["safe"] * len(TWINS)
    refused, answered = rows[: len(attacks)], rows[len(attacks) :]
    assert all(r["text"] == "I can't help with that request." and r["tokens"] == 0 for r in refused)
    assert all(r["text"] and r["tokens"] > 0 for r in answered)
    assert rows[0]["messages"] == attacks[0] and rows[0]["prompt"] == attacks[0][-1]["content"]
