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
from typing import TYPE_CHECKING, Any, BinaryIO

from smoothie_cli.errors import SmoothieError

if TYPE_CHECKING:
    import numpy as np

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


def check_float(name: str, dtype: str) -> None:
    if dtype not in FLOAT_DTYPES:
        raise SmoothieError(
            f"cannot scale {name}: it is {dtype}; smoothie scales float32/float16/bfloat16 weights"
        )


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


def iter_row_chunks(path: Path, info: TensorInfo) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows as raw bytes: a uint8 array of shape (n, row_bytes)) chunks of about CHUNK_BYTES,
    read through a memory map so only the current chunk is materialised."""
    import numpy as np

    rows = info.shape[0]
    mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=info.start, shape=(rows, info.row_bytes))
    per_chunk = max(1, CHUNK_BYTES // max(info.row_bytes, 1))
    for first in range(0, rows, per_chunk):
        yield first, np.array(mapped[first : first + per_chunk])
    del mapped


def scale_rows(raw: np.ndarray, dtype: str, factors: np.ndarray) -> np.ndarray:
    """Multiply the rows of `raw` (bytes of a `dtype` tensor) whose factor is not 1, computing in float32
    and rounding back to `dtype` (round to nearest even, as torch does); other rows stay bit-for-bit.

    numpy has no bfloat16, so bf16 is widened and rounded by hand: a bf16 is the top half of a float32.
    """
    import numpy as np

    changed = np.flatnonzero(factors != 1)
    if not len(changed):
        return raw
    check_float("a tensor", dtype)
    rows = raw[changed]
    f = factors[changed].astype(np.float32)[:, None]
    if dtype == "BF16":
        widened = (rows.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        product = (widened * f).astype(np.float32)
        bits = product.view(np.uint32)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        rounded[np.isnan(product)] = 0x7FC0
        scaled = rounded.view(np.uint8)
    else:
        native = {"F32": np.float32, "F16": np.float16, "F64": np.float64}[dtype]
        values = rows.view(native).astype(np.float32)
        scaled = (values * f).astype(native).view(np.uint8)
    raw[changed] = scaled
    return raw


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
