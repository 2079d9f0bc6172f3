"""Where smoothie keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def smoothie_home() -> Path:
    """`$SMOOTHIE_HOME`, else ~/.cache/smoothie (or `$XDG_CACHE_HOME/smoothie`)."""
    explicit = os.environ.get("SMOOTHIE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "smoothie"
