"""`smoothie eval --endpoint URL`: generation tasks answered by an OpenAI-compatible server (here smoothie's
own, on tiny models, started in this process); the CLI runs as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_serve import make_backend, models, serving  # noqa: F401  (models is a fixture)

REPO = Path(__file__).resolve().parents[1]


def smoothie(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "smoothie_cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)  # fmt: skip


def test_eval_through_an_endpoint(models, tmp_path: Path) -> None:  # noqa: F811
    with serving(make_backend(models, gate=False)) as (url, scheduler):
        run = tmp_path / "run"
        done = smoothie("eval", "--endpoint", url, "--task", "no-chinese", "--dataset", "chinese-elicit",
                        "--limit", "4", "--max-new-tokens", "6", "--json", "-o", str(run))  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["model"] == f"tiny at {url}"  # the served model's name, asked from /v1/models
        assert summary["results"]["no-chinese"]["chinese-elicit"]["n"] == 4
        (samples,) = run.glob("no-chinese*.jsonl")
        answers = [json.loads(line)["answer"] for line in samples.read_text().splitlines()]
        assert len(answers) == 4 and all(answers)
        assert scheduler.status()["served"] == 4  # every answer came from the server
        refused = smoothie("eval", "--endpoint", url, "--task", "mc", "--limit", "2")
        assert refused.returncode == 2
        assert refused.stderr.strip().startswith("error: --endpoint: an endpoint runs only the tasks")
        assert "needs the model itself" in refused.stderr and "Traceback" not in refused.stderr
