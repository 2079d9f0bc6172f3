"""Give back the resident pages of a weight that was copied into another layout (packed, quantised).

transformers maps a safetensors checkpoint privately (mmap) and its parameters are views of that mapping.
Packing a Linear for oneDNN or quantising it to int8 copies its weight, and the old Linear is dropped; but
the file pages the copy read stay resident in this process for as long as the mapping lives, and the
embedding (still a view) keeps it alive. So a packed float32 1.5B target held its 6.2 GB of float32 file
pages beside its 6.4 GB of packed copies (12.6 GB peak RSS where 7 GB is the model), and the int8 draft
1.5 GB beside its int8 weights.

`release(tensor)` tells the kernel, for the pages that lie wholly inside a dropped weight and inside a file
mapping, that this process no longer needs them (madvise MADV_DONTNEED). The file's pages stay in the page
cache (the next start reads nothing from disk), and should anything touch that range again it reads the
file's bytes back. Never applied to anonymous memory (there MADV_DONTNEED would zero it), to pages shared
with a neighbouring tensor, or where madvise is not available (then it is a no-op): the caller must not use
the tensor afterwards, and a weight another module still shares (a tied head) is not passed here.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import mmap
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

MADV_DONTNEED = 4  # Linux


@lru_cache(maxsize=1)
def _madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    function = libc.madvise
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's mappings of regular files, sorted (from /proc/self/maps)."""
    ranges = []
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith("/") or parts[3] == "00:00":  # anonymous or special
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        ranges.append((start, end))
    return sorted(ranges)


def release(tensor: Any, mappings: list[tuple[int, int]] | None = None) -> int:
    """Drop this process's resident pages wholly inside `tensor`'s bytes where they map a file; returns the
    bytes released (0 when none qualify). `mappings`: file_mappings(), when releasing many tensors."""
    advise = _madvise()
    if advise is None or tensor is None or tensor.device.type != "cpu" or tensor.is_sparse:
        return 0
    page = mmap.PAGESIZE
    begin = tensor.data_ptr()
    end = begin + tensor.numel() * tensor.element_size()
    first, last = -(-begin // page) * page, end // page * page  # whole pages only: neighbours keep theirs
    if last <= first:
        return 0
    mappings = file_mappings() if mappings is None else mappings
    index = bisect.bisect_right(mappings, (first, float("inf"))) - 1
    if index < 0 or not (mappings[index][0] <= first and last <= mappings[index][1]):
        return 0  # not (wholly) a file mapping: anonymous memory is never advised
    if advise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), MADV_DONTNEED) != 0:
        return 0
    return last - first
