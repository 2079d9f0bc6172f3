"""`smoothie sweep`: one model load, resumable, results files; and a real 2-setting sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPTS = [
    "'사과'를 중국어로 번역해 주세요.",
    "Translate 'water' into Chinese.",
    "Say hello.",
    "숫자 1을 중국어로?",
]


@pytest.fixture()
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def counters(monkeypatch):
    """Count model loads and generation calls."""
    from smoothie_cli.generation.batched import ModelGenerator
    from smoothie_cli.models import loading

    counts = {"loads": 0, "generate": 0}
    real_load, real_generate = loading.load_model, ModelGenerator.generate

    def load(*args, **kwargs):
        counts["loads"] += 1
        return real_load(*args, **kwargs)

    def generate(self, *args, **kwargs):
        counts["generate"] += 1
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(loading, "load_model", load)
    monkeypatch.setattr(ModelGenerator, "generate", generate)
    return counts


def sweep_args(model: Path, prompts: Path, out: Path) -> list[str]:
    return ["sweep", str(model), "--min-scale", "1.0,0.5", "--smoothness", "10", "--task", "no-chinese",
            "--dataset", str(prompts), "--max-new-tokens", "4", "-o", str(out), "--json"]  # fmt: skip


def test_sweep_loads_once_and_resumes(tiny_qwen, prompts_file: Path, tmp_path: Path, cli, counters):
    out = tmp_path / "sweep"
    code, stdout, _ = cli([*sweep_args(tiny_qwen(), prompts_file, out), "--smoothness", "100"])
    assert code == 0
    first = json.loads(stdout)
    assert counters["loads"] == 1 and counters["generate"] == 4  # 2 min_scale × 2 smoothness, one load
    runs = first["runs"]
    assert [(r["min_scale"], r["smoothness"]) for r in runs] == [
        (1.0, 10.0),
        (0.5, 10.0),
        (1.0, 100.0),
        (0.5, 100.0),
    ]
    key = f"no_chinese:{prompts_file}"
    assert all(key in r and 0.0 <= r[key] <= 1.0 and r["resumed"] is False for r in runs)
    for name in ("results.csv", "results.json", "runs.jsonl", "sweep_min_scale.png", "sweep_smoothness.png"):
        assert (out / name).is_file(), name
    assert (out / "sweep_min_scale.png").read_bytes()[:4] == b"\x89PNG"

    code, stdout, _ = cli([*sweep_args(tiny_qwen(), prompts_file, out), "--smoothness", "100"])
    again = json.loads(stdout)
    assert counters["generate"] == 4  # nothing regenerated
    assert all(r["resumed"] for r in again["runs"])
    assert [r[key] for r in again["runs"]] == [r[key] for r in runs]


def test_interrupted_sweep_keeps_what_it_finished(
    tiny_qwen, prompts_file: Path, tmp_path: Path, cli, counters, monkeypatch
):
    from smoothie_cli.evaluation.tasks.no_chinese import NoChineseTask

    out = tmp_path / "sweep"
    real = NoChineseTask.evaluate
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(NoChineseTask, "evaluate", flaky)
    code, _, _ = cli(sweep_args(tiny_qwen(), prompts_file, out))
    assert code == 130
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["min_scale"] == 1.0
    code, stdout, _ = cli(sweep_args(tiny_qwen(), prompts_file, out))
    assert code == 0
    assert [r["resumed"] for r in json.loads(stdout)["runs"]] == [True, False]


def test_sweep_log_cut_by_a_kill_resumes_from_the_good_lines(
    tiny_qwen, prompts_file: Path, tmp_path: Path, cli, counters
):
    """A kill mid-write leaves runs.jsonl ending in half a line: the re-run keeps the finished result,
    says it skipped one line, redoes that one, and the log is whole again."""
    out = tmp_path / "sweep"
    code, _, _ = cli(sweep_args(tiny_qwen(), prompts_file, out))
    assert code == 0 and counters["generate"] == 2
    log = out / "runs.jsonl"
    first, second = log.read_text().splitlines()
    log.write_text(first + "\n" + second[: len(second) // 2])  # the second result, cut short
    code, stdout, err = cli(sweep_args(tiny_qwen(), prompts_file, out))
    assert code == 0 and "skipped 1 damaged line" in err and "line 2" in err
    assert [r["resumed"] for r in json.loads(stdout)["runs"]] == [True, False]
    assert counters["generate"] == 3  # only the cut result was generated again
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == first and json.loads(lines[1])["key"] == json.loads(second)["key"]


def test_grid_file_and_bad_values(tmp_path: Path, cli):
    grid = tmp_path / "grid.yaml"
    grid.write_text("min_scale: [1.0]\nsmoothnes: [10]\n")
    code, _, err = cli(["sweep", "--grid", str(grid)])
    assert code == 2 and "smoothnes: unknown key" in err and "smoothness" in err
    code, _, err = cli(["sweep", "--min-scale", "1.0,abc"])
    assert code == 2 and "not a number" in err
    code, _, err = cli(["sweep", "--min-scale", "1.5"])
    assert code == 2 and "outside [0, 1]" in err
    code, _, err = cli(["sweep", "--save", "some"])
    assert code == 2 and "--save" in err


def test_shipped_grids_are_valid():
    from smoothie_cli.cli.sweep import read_grid

    root = Path(__file__).resolve().parents[1] / "configs"
    exp1 = read_grid(root / "sweep-min-scale.yaml")
    exp2 = read_grid(root / "sweep-smoothness.yaml")
    assert exp1["min_scale"] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1] and exp1["smoothness"] == [
        10.0
    ]
    assert exp2["smoothness"] == [1.1, 10.0, 100.0, 1000.0] and exp2["min_scale"] == [0.5]
    assert exp1["limit"]["mmlu"] >= 300 and "mmlu" in exp1["datasets"]


@pytest.mark.slow
def test_real_two_setting_sweep(tmp_path: Path, cli):
    """The embedded 0.5B: base against min_scale 0.3 on a few Chinese-eliciting prompts and MMLU questions."""
    out = tmp_path / "sweep"
    code, stdout, _ = cli(["sweep", "embedded:qwen2.5-coder-0.5b-instruct", "--min-scale", "1.0,0.3",
                           "--task", "no-chinese", "--task", "mc", "--dataset", "chinese-elicit",
                           "--dataset", "mmlu", "--limit", "6", "--max-new-tokens", "12", "-o", str(out),
                           "--json"])  # fmt: skip
    assert code == 0
    base, smoothed = json.loads(stdout)["runs"]
    assert base["min_scale"] == 1.0 and smoothed["min_scale"] == 0.3
    assert smoothed["no_chinese:chinese-elicit"] >= base["no_chinese:chinese-elicit"]
    assert base["n"]["acc:mmlu"] == 6 and 0.0 <= smoothed["acc:mmlu"] <= 1.0


def test_per_dataset_limits_from_a_grid(tiny_qwen, prompts_file: Path, tmp_path: Path, cli):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"min_scale: [0.5]\nsmoothness: [10]\ntasks: [no-chinese]\ndatasets: ['{prompts_file}']\n"
        f"limit: {{'{prompts_file}': 2}}\nmax_new_tokens: 3\n"
    )
    out = tmp_path / "s"
    code, stdout, _ = cli(["sweep", str(tiny_qwen()), "--grid", str(grid), "-o", str(out), "--json"])
    assert code == 0
    assert json.loads(stdout)["runs"][0]["n"] == {f"no_chinese:{prompts_file}": 2}


def test_an_explicit_flag_wins_over_the_grid(tiny_qwen, prompts_file: Path, tmp_path: Path, cli, monkeypatch):
    """`--temperature 0` is an explicit choice: it beats the grid's 0.7 although it equals the default."""
    from smoothie_cli.generation.batched import ModelGenerator

    seen: list[float] = []
    real_generate = ModelGenerator.generate

    def generate(self, *args, **kwargs):
        seen.append(self.sampling.temperature)
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(ModelGenerator, "generate", generate)
    grid = tmp_path / "grid.yaml"
    grid.write_text("min_scale: [0.5]\nsmoothness: [10]\ntemperature: 0.7\n")
    args = ["sweep", str(tiny_qwen()), "--grid", str(grid), "--task", "no-chinese", "--dataset",
            str(prompts_file), "--max-new-tokens", "2", "--json"]  # fmt: skip
    code, _, _ = cli([*args, "--temperature", "0", "-o", str(tmp_path / "flag")])
    assert code == 0 and seen == [0.0]  # the flag, not the grid
    code, _, _ = cli([*args, "-o", str(tmp_path / "grid")])
    assert code == 0 and seen == [0.0, 0.7]  # no flag: the grid, not the default


def test_settings_merge_flags_over_grid_over_defaults(tmp_path: Path) -> None:
    from smoothie_cli.sweep import SweepSettings

    grid = {"min_scale": [1.0, 0.5], "temperature": 0.7, "top_p": 0.9, "mode": "bias", "max_new_tokens": 12}
    options = {"temperature": 0.0, "top_p": 1.0, "mode": None, "max_new_tokens": None}
    merged = SweepSettings.merge(options, grid)
    assert (merged.temperature, merged.top_p) == (0.0, 1.0)  # explicit, though equal to the defaults
    assert (merged.mode, merged.max_new_tokens, merged.min_scale) == ("bias", 12, (1.0, 0.5))  # the grid
    assert (merged.samples, merged.mc_style, merged.smoothness) == (1, "letters", (10.0,))  # the defaults
    searched = SweepSettings.merge({"target": "no_chinese:x>=0.9"}, grid)
    assert searched.min_scale == (0.1, 1.0)  # a grid's list is not a search bracket
