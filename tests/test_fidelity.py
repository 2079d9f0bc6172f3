"""fidelity: greedy answers against the base model's, base answers generated once per sweep."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_sweep import PROMPTS, counters, prompts_file  # noqa: F401  (fixtures)


def test_sweep_generates_base_answers_once(tiny_qwen, prompts_file: Path, tmp_path: Path, cli, counters):  # noqa: F811
    out = tmp_path / "sweep"
    code, stdout, _ = cli(["sweep", str(tiny_qwen()), "--min-scale", "1.0,0.5,0.01", "--task", "fidelity",
                           "--task", "no-chinese", "--dataset", str(prompts_file), "--max-new-tokens", "6",
                           "-o", str(out), "--json"])  # fmt: skip
    assert code == 0
    runs = json.loads(stdout)["runs"]
    # the base answers once, then one generation per setting shared by fidelity and no-chinese
    assert counters["generate"] == 1 + 3
    identical, bertscore = f"identical:{prompts_file}", f"bertscore_base:{prompts_file}"
    assert runs[0][identical] == 1.0 and abs(runs[0][bertscore] - 1.0) < 1e-4  # min_scale 1: unchanged
    assert all(0.0 <= r[identical] <= 1.0 and r["n"][identical] == len(PROMPTS) for r in runs)
    assert runs[2][identical] <= runs[0][identical]
