"""`smoothie serve` end to end on the real embedded Qwen2.5-Coder-0.5B (the target, and the int8 draft
with its float32 gate reader): the real command in a subprocess, the real `openai` client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_embedded_model_serves_openai_clients() -> None:
    command = [sys.executable, "-m", "smoothie_cli", "serve", "--target", MODEL, "--draft", MODEL,
               "--port", "0", "--json", "--max-tokens", "24"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert started["event"] == "listening" and started["draft_quant"] == "int8"
        assert started["gate_reading"] == "greedy tag, read by the draft"
        client = openai.OpenAI(base_url=started["url"], api_key="none", max_retries=0, timeout=300)

        def ask(prompt: str, **kwargs: object) -> object:
            return client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": prompt}], temperature=0, **kwargs
            )

        reply = ask("What is the capital of France? Answer with the city name only.", max_tokens=8)
        assert "Paris" in reply.choices[0].message.content  # type: ignore[attr-defined]
        # the zero-shot draft reads a benign question as safe or writes no tag (then: answered anyway)
        assert reply.smoothie["gate"] in ("safe", "untagged") and reply.model == MODEL  # type: ignore[attr-defined]
        prompt = "Name three primary colours."
        whole = ask(prompt).choices[0].message.content  # type: ignore[attr-defined]
        streamed = "".join(c.choices[0].delta.content or "" for c in ask(prompt, stream=True) if c.choices)  # type: ignore[attr-defined]
        assert streamed == whole and whole
        together: list[str] = []
        threads = [threading.Thread(target=lambda: together.append(ask(prompt).choices[0].message.content))
                   for _ in range(2)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # decoded together (one batch, or one moved into the other's): one answer, the same twice
        assert len(together) == 2 and together[0] == together[1] and together[0]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    stopped = json.loads(out.splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["served"] == 5 and stopped["failed"] == 0


@pytest.mark.slow
def test_the_served_gate_reads_the_conversation() -> None:
    """`serve` with the shipped draft (the default): the reported bypasses come back refused, with
    finish_reason content_filter, and the target never answers them; their benign twins are answered."""
    from bypasses import REPORTED, TWINS

    command = [sys.executable, "-m", "smoothie_cli", "serve", "--target", MODEL, "--port", "0", "--json",
               "--max-tokens", "8"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert started["event"] == "listening" and "probe" in started["gate_reading"]
        client = openai.OpenAI(base_url=started["url"], api_key="none", max_retries=0, timeout=300)
        for name, messages in REPORTED.items():
            reply = client.chat.completions.create(model="any", messages=messages, temperature=0)  # type: ignore[arg-type]
            assert reply.choices[0].finish_reason == "content_filter", name
        for name, messages in TWINS.items():
            reply = client.chat.completions.create(model="any", messages=messages, temperature=0)  # type: ignore[arg-type]
            choice = reply.choices[0]
            assert choice.finish_reason in ("stop", "length") and choice.message.content, name
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
