"""sweep --target: bisection for the mildest min_scale that meets a target, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smoothie_cli.errors import SmoothieError
from smoothie_cli.sweep import parse_target, search_min_scale
from tests.test_sweep import counters, prompts_file  # noqa: F401  (fixtures)

TARGET = parse_target("no_chinese:chinese-elicit>=0.99")


def fake_scorer(threshold: float, calls: list[float]):
    """no_chinese reaches 1 at min_scale ≤ threshold and falls off above it, like a real sweep."""

    def evaluate(min_scale: float) -> dict[str, float]:
        calls.append(min_scale)
        value = 1.0 if min_scale <= threshold else max(0.0, 0.98 - (min_scale - threshold))
        return {"no_chinese:chinese-elicit": value, "acc:mmlu": 0.3}

    return evaluate


@pytest.mark.parametrize("threshold", [0.137, 0.37, 0.5, 0.93])
def test_search_finds_a_known_threshold(threshold: float):
    calls: list[float] = []
    search = search_min_scale(fake_scorer(threshold, calls), TARGET, low=0.1, high=1.0, steps=6)
    assert search.found is not None
    assert search.found <= threshold < search.found + 0.9 / 2**6 + 1e-9  # met, and within one bisection step
    assert len(calls) == 2 + 6 == len(set(calls))  # a handful of evaluations, none twice


def test_search_edges():
    calls: list[float] = []
    assert search_min_scale(fake_scorer(1.0, calls), TARGET).found == 1.0 and calls == [1.0]  # base suffices
    calls.clear()
    assert search_min_scale(fake_scorer(0.01, calls), TARGET, low=0.1).found is None  # out of reach
    assert calls == [1.0, 0.1]
    below = parse_target("over_refusal:moderation-test<=0.05")
    assert below.met({"over_refusal:moderation-test": 0.04}) and not below.met({})


@pytest.mark.parametrize("text", ["no_chinese>=0.9", "no_chinese:x=0.9", "no_chinese:x>=abc", ""])
def test_bad_targets(text: str):
    with pytest.raises(SmoothieError, match=r"METRIC:DATASET|not a number"):
        parse_target(text)


def test_sweep_target_on_a_real_model_resumes(tiny_qwen, prompts_file: Path, tmp_path: Path, cli, counters):  # noqa: F811
    out = tmp_path / "search"
    args = ["sweep", str(tiny_qwen()), "--target", f"no_chinese:{prompts_file}>=1.0", "--search-steps", "2",
            "--task", "no-chinese", "--dataset", str(prompts_file), "--max-new-tokens", "3", "-o", str(out),
            "--json"]  # fmt: skip
    code, stdout, _ = cli(args)
    assert code == 0
    first = json.loads(stdout)
    assert first["target"] == f"no_chinese:{prompts_file}>=1"
    evaluated = [e["min_scale"] for e in first["evaluated"]]
    assert evaluated[0] == 1.0 and len(evaluated) in (1, 2, 4)
    generated = counters["generate"]
    code, stdout, _ = cli(args)
    assert json.loads(stdout)["evaluated"] == first["evaluated"]
    assert counters["generate"] == generated  # every evaluation came back from runs.jsonl
    code, _, err = cli([*args[:-1], "--smoothness", "10,100"])
    assert code == 2 and "one smoothness" in err
