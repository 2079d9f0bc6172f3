"""`smoothie sweep --endpoint URL`: a sweep whose answers come from an OpenAI-compatible server, each setting
travelling with its own requests (vllm_xargs for smoothie's processor, or a logit_bias). The server here is a
fake that answers in Chinese unless a request asks it to smooth, and keeps every request it gets."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from test_serve import running

PROMPTS = [
    "'사과'를 중국어로 번역해 주세요.",
    "Translate 'water' into Chinese.",
    "Say hello.",
    "숫자 1을 중국어로?",
]
CHINESE, ENGLISH = "苹果是一种水果", "An apple is a fruit"


def smoothed(body: dict[str, Any]) -> bool:
    """What the fake server takes for a request to smooth: the processor's setting below 1, or any
    negative logit_bias."""
    xargs = body.get("vllm_xargs") or {}
    if xargs.get("smoothie_mode", "off") != "off" and float(xargs["smoothie_min_scale"]) < 1.0:
        return True
    return any(value < 0 for value in (body.get("logit_bias") or {}).values())


def fake_server(seen: list[dict[str, Any]], delay: float = 0.0) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "t"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append(body)
        await asyncio.sleep(delay)
        text = ENGLISH if smoothed(body) else CHINESE
        return {
            "id": f"chatcmpl-{len(seen)}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }  # fmt: skip

    return app


@pytest.fixture()
def server() -> Any:
    seen: list[dict[str, Any]] = []
    with running(fake_server(seen)) as url:
        yield url, seen


@pytest.fixture()
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS) + "\n", encoding="utf-8")
    return path


def sweep_args(url: str, prompts: Path, out: Path, *more: str) -> list[str]:
    return ["sweep", "--endpoint", url, "--task", "no-chinese", "--dataset", str(prompts), "--smoothness",
            "10", "--max-new-tokens", "4", "-o", str(out), "--json", *more]  # fmt: skip


def test_each_setting_travels_to_the_processor_and_resumes(server, prompts_file: Path, tmp_path: Path, cli):
    url, seen = server
    out = tmp_path / "sweep"
    code, stdout, err = cli(
        sweep_args(url, prompts_file, out, "--endpoint-processor", "--min-scale", "1.0,0.5")
    )
    assert code == 0, err
    report = json.loads(stdout)
    key = f"no_chinese:{prompts_file}"
    assert report["model"] == f"fake at {url}"  # the served model, asked from /v1/models
    assert [(r["min_scale"], r["smoothness"], r[key]) for r in report["runs"]] == [
        (1.0, 10.0, 0.0),
        (0.5, 10.0, 1.0),
    ]
    assert all(r["n"] == {key: 4} and r["resumed"] is False and key in r["intervals"] for r in report["runs"])
    assert set(report) == {"model", "runs", "outputs", "seconds"}  # the shape of a local sweep's report
    for name in ("results.csv", "results.json", "runs.jsonl", "sweep_min_scale.png"):
        assert (out / name).is_file(), name
    assert (out / "samples" / "scale_min0.5_smooth10").is_dir()
    # one request per prompt and setting, each carrying its own setting, one setting after the other
    sent = [(b["vllm_xargs"]["smoothie_min_scale"], b["vllm_xargs"]["smoothie_smoothness"]) for b in seen]
    assert sent == [(1.0, 10.0)] * 4 + [(0.5, 10.0)] * 4
    assert all(b["vllm_xargs"]["smoothie_mode"] == "scale" and b["model"] == "fake" for b in seen)
    assert all(b["max_tokens"] == 4 and b["temperature"] == 0 and "logit_bias" not in b for b in seen)

    # again: nothing is asked twice; a new setting asks only for itself
    code, stdout, _ = cli(
        sweep_args(url, prompts_file, out, "--endpoint-processor", "--min-scale", "1.0,0.5")
    )
    assert code == 0 and len(seen) == 8
    assert all(r["resumed"] for r in json.loads(stdout)["runs"])
    code, stdout, _ = cli(
        sweep_args(
            url, prompts_file, out, "--endpoint-processor", "--min-scale", "1.0,0.5,0.3", "--mode", "bias"
        )
    )
    assert code == 0 and len(seen) == 8 + 12  # another mode is another result: all three settings
    assert Counter(b["vllm_xargs"]["smoothie_mode"] for b in seen[8:]) == {"bias": 12}


def test_bias_mode_travels_as_a_logit_bias(server, prompts_file: Path, tmp_path: Path, cli, tiny_qwen):
    """No processor in the server: bias mode goes as a logit_bias over the vocabulary of MODEL (a Qwen
    tokenizer here), and min_scale 1.0 asks for nothing."""
    url, seen = server
    model = str(tiny_qwen())
    out = tmp_path / "bias"
    code, stdout, err = cli(
        [*sweep_args(url, prompts_file, out, "--mode", "bias", "--min-scale", "1.0,0.5"), model]
    )
    assert code == 0, err
    runs = json.loads(stdout)["runs"]
    assert [r[f"no_chinese:{prompts_file}"] for r in runs] == [0.0, 1.0]
    assert len(seen) == 8 and all(b["model"] == model and "vllm_xargs" not in b for b in seen)
    assert all("logit_bias" not in b for b in seen[:4])  # log(1) = 0 everywhere: nothing to send
    biases = [b["logit_bias"] for b in seen[4:]]
    assert all(bias == biases[0] for bias in biases) and len(biases[0]) > 20_000  # the CJK tokens and more
    assert all(-100 <= value < 0 for value in biases[0].values())


def test_a_logit_bias_needs_a_vocabulary(server, prompts_file: Path, tmp_path: Path, cli) -> None:
    """The served name ('fake') is no model smoothie can read a vocabulary from: one line, nothing sent."""
    url, seen = server
    code, _, err = cli(sweep_args(url, prompts_file, tmp_path / "x", "--mode", "bias", "--min-scale", "0.5"))
    assert code == 2 and "error: a logit_bias is built here from the served model's vocabulary" in err
    assert "'fake'" in err and "Traceback" not in err and seen == []


def test_settings_a_server_cannot_take_are_one_line_errors(prompts_file: Path, tmp_path: Path, cli):
    url = "http://127.0.0.1:9/v1"  # never reached: the settings are checked first
    for more, expected in [
        (["--min-scale", "0.5"], "error: --mode: scale mode needs smoothie's logits processor in the server"),
        (
            ["--endpoint-processor", "--save", "best"],
            "error: --save: checkpoints are written from a local model",
        ),
    ]:
        code, _, err = cli(sweep_args(url, prompts_file, tmp_path / "x", *more))
        assert code == 2 and err.strip().splitlines()[-1].startswith(expected), err
    code, _, err = cli(
        ["sweep", "--endpoint", url, "--endpoint-processor", "--task", "mc", "-o", str(tmp_path)]
    )
    assert code == 2 and "error: --endpoint: an endpoint runs only the tasks" in err


def test_an_endpoint_sweep_runs_the_endpoint_tasks_by_default() -> None:
    from smoothie_cli.sweep import SweepSettings

    settings = SweepSettings.merge({"endpoint": "http://x/v1", "endpoint_processor": True})
    assert settings.tasks == ("no-chinese",)  # mc needs the model's own logits
    assert SweepSettings.merge({}).tasks == ("no-chinese", "mc")
    identity = settings.identity("fake at http://x/v1", type("C", (), {"unicode_targets": []})())
    assert identity["server_smoothing"] == "processor" and identity["scales"] == "server"


def test_eval_through_the_processor_carries_its_setting(server, prompts_file: Path, cli) -> None:
    """`eval --endpoint` goes through the same session: one setting, on every request."""
    url, seen = server
    code, stdout, err = cli(["eval", "--endpoint", url, "--endpoint-processor", "--min-scale", "0.3",
                             "--mode", "lower", "--dataset", str(prompts_file), "--max-new-tokens", "4",
                             "--json"])  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert (
        summary["setting"]["label"]
        == f"{url}, smoothing: upstream processor: min_scale 0.3, smoothness 10.0, lower"
    )
    assert summary["results"]["no-chinese"]["prompts"]["no_chinese"] == 1.0
    assert [b["vllm_xargs"] for b in seen] == [
        {"smoothie_mode": "lower", "smoothie_min_scale": 0.3, "smoothie_smoothness": 10.0}
    ] * 4
    code, _, err = cli(["eval", "--endpoint", url, "--draft", "embedded:x", "--dataset", str(prompts_file)])
    assert code == 2 and "error: --draft: the draft gates and drafts locally" in err
    code, _, err = cli(["eval", "--endpoint", url, "--scales", "auto", "--dataset", str(prompts_file)])
    assert code == 2 and "error: --mode: scale mode needs smoothie's logits processor" in err
    assert len(seen) == 4


def test_a_request_waits_as_long_as_endpoint_timeout_says(prompts_file: Path, cli) -> None:
    """A server slower than --endpoint-timeout: one line naming the option; a longer timeout waits for it."""
    seen: list[dict[str, Any]] = []
    with running(fake_server(seen, delay=1.5)) as url:
        args = ["eval", "--endpoint", url, "--dataset", str(prompts_file), "--max-new-tokens", "4",
                "--limit", "1", "--json"]  # fmt: skip
        code, _, err = cli([*args, "--endpoint-timeout", "1"])
        assert code == 2 and "error: --endpoint-timeout: the endpoint" in err and "Traceback" not in err
        code, stdout, err = cli([*args, "--endpoint-timeout", "30"])
        assert code == 0, err
        assert json.loads(stdout)["results"]["no-chinese"]["prompts"]["no_chinese"] == 0.0
