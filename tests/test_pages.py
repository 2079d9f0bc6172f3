"""models/pages.py: a dropped weight's file pages leave this process's RSS, its bytes stay readable from the
file, and anonymous memory is never advised (there MADV_DONTNEED would zero it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from smoothie_cli.models.pages import file_mappings, release

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc: Linux")


def _rss_file_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_a_mapped_weights_pages_are_released_and_its_bytes_read_back(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = {"a": torch.randn(4096, 2048), "b": torch.randn(3, 5)}  # 32 MiB, and a small neighbour
    save_file(weights, str(tmp_path / "w.safetensors"))
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt", device="cpu") as handle:
        mapped, neighbour = handle.get_tensor("a"), handle.get_tensor("b")
        assert any(start <= mapped.data_ptr() < end for start, end in file_mappings()), "not a file map"
        expected = float(mapped.sum())  # touches every page
        before = _rss_file_mb()
        released = release(mapped)
        after = _rss_file_mb()
        assert released >= 31 * 2**20
        assert before - after >= 30, (before, after)
        assert float(mapped.sum()) == expected  # read back from the file, unchanged
        assert torch.equal(neighbour, weights["b"])


def test_anonymous_memory_is_never_advised() -> None:
    tensor = torch.randn(1024, 1024)
    copy = tensor.clone()
    assert release(tensor) == 0
    assert torch.equal(tensor, copy)


def test_a_tensor_smaller_than_a_page_releases_nothing(tmp_path: Path) -> None:
    save_file({"x": torch.ones(16)}, str(tmp_path / "s.safetensors"))
    with safe_open(str(tmp_path / "s.safetensors"), framework="pt", device="cpu") as handle:
        small = handle.get_tensor("x")
        assert release(small) == 0
        assert torch.equal(small, torch.ones(16))
