"""Stream safetensors files tensor by tensor: read headers, copy raw byte ranges, write new files.

`safetensors.torch.save_file` needs every tensor of a file in memory at once; rewriting one tensor of a
multi-GB shard that way costs the whole shard in RAM. The format is a little-endian u64 header length, a
JSON header (dtype, shape, data_offsets per tensor) and the raw data, so a shard can be rewritten with
the unchanged tensors copied byte range by byte range (in the kernel, with `os.copy_file_range`) and the
changed one produced in row chunks: peak memory is one chunk, whatever the model's size.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from smoothie_cli.errors import SmoothieError

CHUNK_BYTES = 64 << 20
ITEM_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute offset of the data in the file
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def row_bytes(self) -> int:
        rows = self.shape[0] if self.shape else 1
        return self.nbytes // max(rows, 1)


@dataclass
class SafetensorsFile:
    path: Path
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] | None = None

    def ordered(self) -> list[TensorInfo]:
        return sorted(self.tensors.values(), key=lambda t: t.start)


def read_header(path: Path) -> SafetensorsFile:
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SmoothieError(f"{path} is not a readable safetensors file ({error})") from None
    data_start = 8 + length
    metadata = header.pop("__metadata__", None)
    tensors = {
        name: TensorInfo(
            name,
            info["dtype"],
            tuple(info["shape"]),
            data_start + info["data_offsets"][0],
            data_start + info["data_offsets"][1],
        )
        for name, info in header.items()
    }
    return SafetensorsFile(Path(path), tensors, metadata)


def torch_dtype(code: str) -> Any:
    import torch

    table = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    if code not in table:
        raise SmoothieError(f"cannot scale a {code} tensor; smoothie scales float32/float16/bfloat16 weights")
    return table[code]


def copy_range(source: BinaryIO, start: int, length: int, out: BinaryIO) -> None:
    """Copy `length` bytes of `source` from `start` to the end of `out`, in the kernel when possible."""
    out.flush()
    src_fd, dst_fd = source.fileno(), out.fileno()
    offset, remaining = start, length
    if hasattr(os, "copy_file_range"):
        try:
            while remaining > 0:
                copied = os.copy_file_range(src_fd, dst_fd, min(remaining, 1 << 30), offset)
                if copied == 0:
                    break
                offset += copied
                remaining -= copied
        except OSError:
            pass  # e.g. across file systems on old kernels: fall back to reads and writes
    out.seek(0, os.SEEK_END)
    source.seek(offset)
    while remaining > 0:
        chunk = source.read(min(remaining, CHUNK_BYTES))
        if not chunk:
            raise SmoothieError(
                f"{getattr(source, 'name', 'input')} ended early; the checkpoint is truncated"
            )
        out.write(chunk)
        remaining -= len(chunk)


def iter_row_chunks(path: Path, info: TensorInfo) -> Iterator[tuple[int, Any]]:
    """(first row, tensor of rows) chunks of a 2-D tensor, about CHUNK_BYTES each, read through
    safetensors' memory map so only the current chunk is materialised."""
    from safetensors import safe_open

    torch_dtype(info.dtype)  # refuse non-float tensors with a clear message
    rows = info.shape[0]
    per_chunk = max(1, CHUNK_BYTES // max(info.row_bytes, 1))
    with safe_open(str(path), framework="pt") as handle:
        sliced = handle.get_slice(info.name)
        for first in range(0, rows, per_chunk):
            yield first, sliced[first : first + per_chunk]


@dataclass
class OutputTensor:
    """A tensor of a file being written: its header entry and how to produce its bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    write: Callable[[BinaryIO], None]


@dataclass
class ShardPlan:
    tensors: list[OutputTensor] = field(default_factory=list)
    metadata: dict[str, str] | None = None


def write_safetensors(path: Path, plan: ShardPlan) -> None:
    """Write `plan` as a safetensors file at `path` (the caller makes the directory atomic)."""
    header: dict[str, Any] = {}
    if plan.metadata is not None:
        header["__metadata__"] = plan.metadata
    offset = 0
    for tensor in plan.tensors:
        header[tensor.name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + tensor.nbytes],
        }
        offset += tensor.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned, as safetensors does
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for tensor in plan.tensors:
            before = out.tell()
            tensor.write(out)
            out.seek(0, os.SEEK_END)
            if out.tell() - before != tensor.nbytes:
                raise SmoothieError(f"internal error: wrote {out.tell() - before} bytes for {tensor.name}")
