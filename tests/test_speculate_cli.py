"""`smoothie speculate` and `eval --draft` on tiny models: streaming, JSON Lines, smoothing with a draft."""

from __future__ import annotations

import json
from pathlib import Path

from smoothie_cli.unicode_blocks import CJK
from smoothie_cli.vocab.scripts import TargetScript

PROMPTS = ["hello there", "what is a cat"]


def speculate(cli, model: Path, *extra: str) -> tuple[int, str, str]:
    return cli(["speculate", *PROMPTS, "--target", str(model), "--draft", str(model), "--draft-quant", "none",
                "--max-new-tokens", "8", *extra])  # fmt: skip


def test_json_lines_one_object_per_prompt_and_streamed_text(cli, tiny_qwen) -> None:
    code, out, _ = speculate(cli, tiny_qwen(), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in rows] == PROMPTS
    assert all(r["strategy"] == "speculative" and r["draft_context"] == "chat" for r in rows)
    code, shown, _ = speculate(cli, tiny_qwen())
    assert code == 0
    for row in rows:  # the streamed text is the answer itself, prompt by prompt
        assert f"> {row['prompt']}" in shown and row["text"].strip()[:20] in shown


def test_many_prompts_are_batched_and_say_so(cli, tiny_qwen) -> None:
    prompts = ["one", "two", "three", "four", "five"]
    base = ["speculate", *prompts, "--target", str(tiny_qwen()), "--draft", "none", "--max-new-tokens", "6",
            "--json"]  # fmt: skip
    code, out, _ = cli(base)
    batched = [json.loads(line) for line in out.splitlines()]
    code2, out2, _ = cli([*base, "--strategy", "speculative"])
    one_by_one = [json.loads(line) for line in out2.splitlines()]
    assert code == code2 == 0
    assert {r["strategy"] for r in batched} == {"batched"} and {r["strategy"] for r in one_by_one} == {
        "speculative"
    }
    assert [r["text"] for r in batched] == [r["text"] for r in one_by_one]


def test_smoothing_with_a_draft_writes_the_smoothed_targets_text(cli, tiny_qwen) -> None:
    script = TargetScript(CJK)
    ban = ["--scales", "auto", "--min-scale", "0", "--mode", "bias", "--json"]
    code, out, _ = speculate(cli, tiny_qwen(), *ban)
    drafted = [json.loads(line)["text"] for line in out.splitlines()]
    code2, out2, _ = cli(["speculate", *PROMPTS, "--target", str(tiny_qwen()), "--draft", "none",
                          "--no-lookup", "--max-new-tokens", "8", *ban])  # fmt: skip
    alone = [json.loads(line) for line in out2.splitlines()]
    assert code == code2 == 0 and drafted == [r["text"] for r in alone]
    assert alone[0]["smoothing"]["mode"] == "bias"
    assert not any(script.has_target_char(text) for text in drafted)


def test_eval_with_a_draft_accepts_scales(cli, tiny_qwen, tmp_path) -> None:
    model = str(tiny_qwen())
    argv = ["eval", model, "--task", "no-chinese", "--dataset", "chinese-elicit", "--limit", "3",
            "--max-new-tokens", "6", "--scales", "auto", "--min-scale", "0", "--mode", "bias",
            "--json"]  # fmt: skip
    code, _, _ = cli([*argv, "-o", str(tmp_path / "alone")])
    code2, out2, _ = cli([*argv, "-o", str(tmp_path / "drafted"), "--draft", model, "--draft-quant", "none"])
    assert code == code2 == 0
    summary = json.loads(out2)
    assert summary["setting"]["draft"] == model and summary["setting"]["mode"] == "bias"

    def answers(name: str) -> list[str]:
        (samples,) = (tmp_path / name).glob("*.jsonl")
        return [json.loads(line)["answer"] for line in samples.read_text().splitlines()]

    assert answers("drafted") == answers("alone")
    assert summary["results"]["no-chinese"]["chinese-elicit"]["no_chinese"] == 1.0


def test_the_llama_cpp_engine_needs_a_gguf_target(cli, tiny_qwen) -> None:
    code, _, err = cli(["speculate", "hi", "--target", str(tiny_qwen()), "--draft", "none",
                        "--target-engine", "llama.cpp"])  # fmt: skip
    assert code == 2
    assert "reads a GGUF file" in err and "--target-engine" in err and "Traceback" not in err
    code, _, err = cli(["speculate", "hi", "--target", str(tiny_qwen()), "--draft", "none",
                        "--target-engine", "vulkan"])  # fmt: skip
    assert code == 2 and "torch" in err and "llama.cpp" in err


def test_auto_keeps_torch_for_a_checkpoint_directory(cli, tiny_qwen) -> None:
    code, out, _ = cli(["speculate", "hi", "--target", str(tiny_qwen()), "--draft", "none",
                        "--max-new-tokens", "2", "--json"])  # fmt: skip
    assert code == 0 and json.loads(out.splitlines()[0])["target_engine"] == "torch"
