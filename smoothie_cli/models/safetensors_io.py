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

from pydantic import BaseModel, ConfigDict, field_validator

from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import parse_json, read_json_model

if TYPE_CHECKING:
    import numpy as np

CHUNK_BYTES = 64 << 20
# bits per element of every dtype the safetensors format defines (sub-byte floats pack several per byte)
DTYPE_BITS = {
    "F64": 64, "F32": 32, "F16": 16, "BF16": 16, "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U8": 8, "BOOL": 8,
    "U16": 16, "U32": 32, "U64": 64, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "F6_E2M3": 6, "F6_E3M2": 6,
    "F4": 4, "C64": 64,
}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
MAX_DIMS = 64  # torch's limit
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
    """The header of a safetensors file, checked the way the safetensors library checks it.

    Hand-written (the library has no header-only reader that reports byte offsets): the 8-byte length is
    checked against the file size before anything is read or allocated from it, and each tensor's dtype,
    shape and byte range are checked — known dtype, size = elements × item size, ranges inside the file,
    contiguous, never overlapping — so later byte-range copies and memory maps stay inside the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 8:
                raise SmoothieError(f"{path} is not a safetensors file: {size} bytes, too short for a header")
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise SmoothieError(
                    f"{path} is truncated or not a safetensors file: its header claims {length:,} bytes "
                    f"but the file has {size - 8:,} after the length"
                )
            raw = handle.read(length)
    except OSError as error:
        raise SmoothieError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) != length:
        raise SmoothieError(f"{path} changed while being read; try again")
    header = parse_json(raw, f"the safetensors header of {path}")
    if not isinstance(header, dict):
        raise SmoothieError(f"{path}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise SmoothieError(f"{path}: __metadata__ must map names to strings")
    data_start = 8 + length
    data_bytes = size - data_start
    tensors = {name: _tensor_info(path, name, info, data_start, data_bytes) for name, info in header.items()}
    _check_layout(path, tensors, data_start, data_bytes)
    return SafetensorsFile(path, tensors, metadata)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _tensor_info(path: Path, name: str, info: Any, data_start: int, data_bytes: int) -> TensorInfo:
    where = f"{path}: tensor {_short(name)}"
    if not isinstance(info, dict):
        raise SmoothieError(f"{where} is not described by an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise SmoothieError(f"{where} has an unknown dtype {_short(dtype)}")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(_is_count(d) for d in shape)):
        raise SmoothieError(f"{where} has a bad shape {_short(shape)}; expected a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise SmoothieError(f"{where} has bad data_offsets {_short(offsets)}; expected [begin, end]")
    begin, end = offsets
    if end < begin or end > data_bytes:
        raise SmoothieError(
            f"{where}: data_offsets [{begin}, {end}] are not inside the {data_bytes:,} bytes of data"
        )
    elements = 0 if 0 in shape else 1
    for dim in shape if elements else ():
        elements *= dim
        if elements > 8 * data_bytes:  # already larger than the file: no need for the exact product
            break
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        raise SmoothieError(
            f"{where}: {dtype} {_short(shape)} does not fit its data_offsets, {end - begin:,} bytes"
        )
    return TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)


def _check_layout(path: Path, tensors: dict[str, TensorInfo], data_start: int, data_bytes: int) -> None:
    """The tensors' byte ranges tile the data section exactly: no gap, no overlap, nothing past the end."""
    position = data_start
    for info in sorted(tensors.values(), key=lambda t: (t.start, t.end)):
        if info.start != position:
            problem = "overlaps the tensor before it" if info.start < position else "leaves a gap before it"
            raise SmoothieError(f"{path}: tensor {info.name!r} {problem}; the file is damaged")
        position = info.end
    if position - data_start != data_bytes:
        raise SmoothieError(
            f"{path}: the tensors hold {position - data_start:,} bytes of data but the file has "
            f"{data_bytes:,} after the header; it is truncated or damaged"
        )


class IndexMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    total_size: int | None = None


class SafetensorsIndex(BaseModel):
    """model.safetensors.index.json: which shard file holds each tensor."""

    model_config = ConfigDict(extra="allow")
    metadata: IndexMetadata | None = None
    weight_map: dict[str, str]

    @field_validator("weight_map")
    @classmethod
    def _plain_shard_names(cls, weight_map: dict[str, str]) -> dict[str, str]:
        for name, shard in weight_map.items():
            # a shard is a file beside the index: a path could point anywhere on the disk
            if not shard.endswith(".safetensors") or "/" in shard or "\\" in shard or shard.startswith("."):
                raise ValueError(f"{name} is in {shard!r}, not a .safetensors file beside the index")
        if not weight_map:
            raise ValueError("the weight map is empty")
        return weight_map


def read_index(path: Path) -> SafetensorsIndex:
    """A sharded checkpoint's index, with every shard it names present beside it."""
    index = read_json_model(path, SafetensorsIndex, "checkpoint index")
    for shard in sorted(set(index.weight_map.values())):
        if not (Path(path).parent / shard).is_file():
            raise SmoothieError(f"{path} names shard {shard}, which is missing; the download is incomplete")
    return index


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
