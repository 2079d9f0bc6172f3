"""What the γ scheduler measured of this machine, kept for the next run of the same models.

The adaptive γ needs two costs before it can choose well: what a target forward of k tokens costs, and what
one guess of each source costs. A process measures them as it decodes; `speculate` used to measure them with
a warm-up answer before the first real one (seconds on a CPU), and a draft too slow to ever pay was found
out only by trying it. Those costs belong to the machine and the models, not to a prompt, so after a run
they are written to `$SMOOTHIE_HOME/costs/` under a key naming everything they depend on (CPU, threads,
device, target file and engine, draft and its quantisation, library versions); a later run with the same
key starts from them and skips the warm-up. They keep adapting during the run as before: a busier machine
moves them within a few rounds. Acceptance is never kept: it belongs to each answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from smoothie_cli.atomic import write_text_atomic
from smoothie_cli.paths import smoothie_home

FORMAT = "costs-2"  # costs-1 (one weighted line over all widths) is measured again


def host() -> dict[str, Any]:
    """The parts of this machine that decide what a forward costs."""
    import torch

    model = platform.processor()
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {"torch": torch.__version__}
    with suppress(ImportError):
        import llama_cpp

        versions["llama_cpp"] = llama_cpp.__version__
    return {"cpu": model, "machine": platform.machine(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "versions": versions}  # fmt: skip


def profile_path(identity: Mapping[str, Any]) -> Path:
    """Where the costs of `identity` (the models, the engine, the device; `host()` is added) are kept."""
    key = json.dumps({"format": FORMAT, "host": host(), **identity}, sort_keys=True, default=str)
    return smoothie_home() / "costs" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def load_costs(path: Path) -> dict[str, Any] | None:
    """The costs written at `path`, or None when there are none or they cannot be read (a damaged file is
    measured again, not an error)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    widths, guesses = record.get("widths"), record.get("guess_seconds")
    if not isinstance(widths, dict) or not widths or not isinstance(guesses, dict):
        return None
    pairs = list(widths.values())
    if not all(isinstance(p, list) and len(p) == 2 for p in pairs) or not all(k.isdigit() for k in widths):
        return None
    numbers = [v for p in pairs for v in p] + list(guesses.values())
    if not all(_finite(v) for v in numbers) or any(p[0] <= 0 or p[1] <= 0 for p in pairs):
        return None
    return {"widths": {k: [float(p[0]), float(p[1])] for k, p in widths.items()},
            "guess_seconds": {str(k): float(v) for k, v in guesses.items()}}  # fmt: skip


def save_costs(path: Path, costs: Mapping[str, Any]) -> None:
    """Write `costs` (GammaScheduler.costs()) atomically; a cache that cannot be written is skipped."""
    if not costs.get("widths"):
        return  # nothing measured
    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"format": FORMAT, **costs}, indent=1) + "\n")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0
