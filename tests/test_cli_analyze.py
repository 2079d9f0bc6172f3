"""`smoothie analyze` through the real entry point: JSON, tables, files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_json_summary(tokenizer_only_dir: Path, cli):
    code, out, _ = cli(["analyze", str(tokenizer_only_dir), "--window-size", "4", "--json"])
    assert code == 0
    summary = json.loads(out)  # stdout holds JSON only
    assert summary["vocab_size"] == 151_643
    assert summary["target_tokens"] == 26_153
    assert summary["broken_tokens"] == 1_457
    assert summary["fragment_tokens"] == 1_448
    assert summary["literal_replacement_tokens"] == 9
    assert summary["window_size"] == 4
    assert summary["analyzed_tokens"] == 1_448
    assert summary["seconds"] >= 0
    assert summary["model"] == str(tokenizer_only_dir)


def test_tables_for_people(tokenizer_only_dir: Path, cli):
    code, out, _ = cli(["analyze", str(tokenizer_only_dir)])
    assert code == 0
    assert "26,153" in out and "1,457" in out and "1,448" in out
    assert "CJK Unified Ideographs" in out
    assert "weighted_prob" in out


def test_output_dir(tokenizer_only_dir: Path, tmp_path: Path, cli):
    out_dir = tmp_path / "analysis"
    code, _, _ = cli(["analyze", str(tokenizer_only_dir), "-o", str(out_dir), "--json"])
    assert code == 0
    doc = json.loads((out_dir / "analysis.json").read_text())
    assert doc["counts"]["target"] == 26_153
    assert (out_dir / "weighted_prob.png").read_bytes()[:4] == b"\x89PNG"
    first = (out_dir / "analysis.json").read_bytes()
    cli(["analyze", str(tokenizer_only_dir), "-o", str(out_dir), "--json"])
    assert (out_dir / "analysis.json").read_bytes() == first


def test_presets_and_ranges(tokenizer_only_dir: Path, cli):
    _, out, _ = cli(["analyze", str(tokenizer_only_dir), "--preset", "hangul", "--json"])
    hangul = json.loads(out)
    assert 0 < hangul["target_tokens"] < 26_153
    assert set(hangul["targets_per_block"]) >= {"Hangul Syllables"}
    _, out, _ = cli(["analyze", str(tokenizer_only_dir), "--range", "AC00-D7AF", "--json"])
    syllables = json.loads(out)
    assert syllables["target_tokens"] == hangul["targets_per_block"]["Hangul Syllables"]
    _, out, _ = cli(
        ["analyze", str(tokenizer_only_dir), "--preset", "cyrillic", "--preset", "kana", "--json"]
    )
    assert len(json.loads(out)["targets_per_block"]) == 13


def test_config_file_and_flag_override(tokenizer_only_dir: Path, tmp_path: Path, cli):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"model:\n  name: '{tokenizer_only_dir}'\nanalysis:\n  window_size: 3\n"
        "unicode_targets:\n  - name: Hangul Syllables\n    range: [0xAC00, 0xD7AF]\n"
    )
    _, out, _ = cli(["analyze", "-c", str(cfg), "--json"])
    from_file = json.loads(out)
    assert from_file["window_size"] == 3 and from_file["model"] == str(tokenizer_only_dir)
    _, out, _ = cli(["analyze", "-c", str(cfg), "--window-size", "2", "--json"])
    assert json.loads(out)["window_size"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--window-size", "5"], "window_size"),
        (["--window-size", "1"], "window_size"),
        (["--range", "9FFF-4E00"], "after its end"),
        (["--range", "10000-110000"], "U+10FFFF"),
        (["--range", "lots"], "START-END"),
        (["--preset", "klingon"], "unknown --preset"),
        (["--direction", "sideways"], "direction"),
        (["-c", "/no/such/config.yaml"], "config /no/such/config.yaml does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(tokenizer_only_dir: Path, cli, args, fragment):
    code, out, err = cli(["analyze", str(tokenizer_only_dir), *args])
    assert code == 2
    assert out == ""
    assert fragment in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_model_is_one_line(cli):
    code, _, err = cli(["analyze", "./definitely/not/here"])
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_bad_weights_in_config(tokenizer_only_dir: Path, tmp_path: Path, cli):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("analysis:\n  ngram_weights: [0, 0, 0]\n")
    code, _, err = cli(["analyze", str(tokenizer_only_dir), "-c", str(cfg)])
    assert code == 2 and "all zero" in err
    cfg.write_text("analysis:\n  ngram_weights: [1, -1]\n")
    code, _, err = cli(["analyze", str(tokenizer_only_dir), "-c", str(cfg)])
    assert code == 2 and "negative" in err
    cfg.write_text("analysis: {window_size: 2\n")
    code, _, err = cli(["analyze", str(tokenizer_only_dir), "-c", str(cfg)])
    assert code == 2 and "not valid YAML" in err


def test_help_lists_only_working_commands(cli):
    code, out, _ = cli(["--help"])
    assert code == 0 and "analyze" in out
