"""Real servers for the integration tests: vLLM from .venv-vllm (`make vllm`), `smoothie serve --upstream`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VLLM_PY = Path(os.environ.get("SMOOTHIE_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
PROCESSOR = "smoothie_cli.smoothing.vllm_processor:SmoothingLogitsProcessor"
BASE = "embedded:qwen2.5-coder-0.5b-instruct"
DRAFT = "embedded:qwen2.5-coder-0.5b-cautious"
SERVED = "qwen"
LOAD_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM to the server's process group (vLLM spawns its engine), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, even by SIGKILL (Linux), so no
    server outlives its tests."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def vllm_server(model_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Any]:
    """`python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 (a free port), smoothie's processor
    loaded; yields (base url, load seconds, process). smoothie's checkout is on PYTHONPATH, and nothing
    else of smoothie's is installed there."""
    if not VLLM_PY.is_file():
        pytest.skip(f"{VLLM_PY} is missing: run `make vllm`")
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "0-1",
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        **(env or {}),
    }
    command = [str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED,
               "--max-model-len", "2048", "--logits-processors", PROCESSOR, *args]  # fmt: skip
    if "--no-enforce-eager" not in args:
        # tests: skip torch.compile (2.5 of the 3.5 minutes a start takes on 2 busy cores)
        command.append("--enforce-eager")
    else:
        command.remove("--no-enforce-eager")
    started = time.monotonic()
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True, preexec_fn=_die_with_parent)  # fmt: skip
    try:
        while get_health(port) != 200:
            if process.poll() is not None:
                pytest.fail(f"vLLM exited with {process.returncode}:\n{tail(log)}")
            if time.monotonic() - started > LOAD_TIMEOUT:
                pytest.fail(f"vLLM did not answer /health within {LOAD_TIMEOUT} s:\n{tail(log)}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1", time.monotonic() - started, process
    finally:
        stop(process)


def get_health(port: int) -> int:
    try:
        return get(f"http://127.0.0.1:{port}/health", timeout=2)[0]
    except OSError:
        return 0


def smoothie(*args: str) -> subprocess.CompletedProcess[str]:
    """The smoothie CLI of this checkout, in this interpreter."""
    return subprocess.run([sys.executable, "-m", "smoothie_cli", *args], capture_output=True, text=True,
                          check=True, cwd=REPO)  # fmt: skip


@contextmanager
def gateway(upstream: str, log: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[Any]]]:
    """`smoothie serve --upstream` on a free port with the shipped cautious draft; yields (url, process)."""
    command = [sys.executable, "-m", "smoothie_cli", "serve", "--upstream", upstream, "--draft", DRAFT,
               "--port", "0", "--json", "--model-name", SERVED, *args]  # fmt: skip
    with log.open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=REPO,
                                   start_new_session=True, preexec_fn=_die_with_parent)  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(30)
            pytest.fail(f"smoothie serve exited with {process.returncode}:\n{tail(log)}")
        yield json.loads(line)["url"], process
    finally:
        stop(process)


def metric(url: str, name: str) -> float:
    """The sum of a Prometheus counter over its labels, from vLLM's /metrics."""
    status, text = get(url.removesuffix("/v1") + "/metrics")
    assert status == 200
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))  # fmt: skip
