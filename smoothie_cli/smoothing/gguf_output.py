"""Write a smoothed GGUF: the output tensor's rows scaled, every other tensor copied byte for byte.

llama.cpp, Ollama and LM Studio users run GGUF files, so `smoothie smooth model.gguf -o smoothed.gguf` writes
one they can load as is. Only `output.weight` changes. Where the GGUF ties the output to `token_embd.weight`
(no `output.weight` tensor; llama.cpp then reads the embedding as the output), a separate `output.weight`
is added, so the input embeddings stay unchanged (as in the safetensors path).

How a row is scaled (`output_type="own"`, the default): a quantised block stores its values as multiples of
one or two float16 factors (Q8_0: x = d·q; Q4_K: x = d·sc·q − dmin·m; Q6_K: x = d·sc·q; …), and every
block lies inside one row. Multiplying a row's block factors by S multiplies every value of the row by S
exactly, up to the float16 rounding of the new factor — the same type, the same size and speed, no
re-quantisation (gguf-py cannot quantise K-quants anyway). Measured on the embedded GGUFs with the default
smoothing, against exact float scaling of the dequantised rows (benchmarks/bench_cpu.py --gguf-error):

| GGUF (output type) | way | MB | max abs | mean abs | max / row max |
|---|---|---|---|---|---|
| 0.5B (Q8_0) | own: Q8_0 factors | 145 | 3.2e-5 | 3.5e-8 | 4.8e-4 |
| 0.5B (Q8_0) | F16 | 272 | 4.9e-5 | 1.1e-6 | 4.7e-4 |
| 1.5B (Q6_K) | own: Q6_K factors | 191 | 1.2e-4 | 1.5e-5 | 6.3e-3 |
| 1.5B (Q6_K) | F16 | 467 | 2.9e-5 | 1.1e-6 | 4.8e-4 |
| 1.5B (Q6_K) | Q8_0 re-quantised | 248 | 3.7e-4 | 3.8e-5 | 4.2e-3 |

(Q8_0 re-quantisation of the 0.5B's Q8_0 rows recovers the same bytes as "own".) The own type is chosen:
F16 is closer on a Q6_K head (whose tiny super-scales sit in float16's subnormal range, so scaling them
rounds to ~0.6% of a row's range at worst) but costs 2.4× that tensor's bytes, which llama.cpp reads for
every token; a 0.6% error in a factor of 0.5 is far below what the scales themselves mean. Types without
block factors here (IQ*, TQ*, …) are written as F16 of the exactly scaled rows; "f16" and "q8_0" choose
those wider types explicitly.

Written with `gguf.GGUFWriter` (metadata and tensor infos copied from the reader, tensor data streamed
from the reader's memory map) into a temp file renamed at the end; the input is never modified.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smoothie_cli.errors import BadValue, CannotWrite, SmoothieError
from smoothie_cli.gguf_file import read_gguf
from smoothie_cli.progress import Progress, no_progress
from smoothie_cli.smoothing.scales import TokenScales

OUTPUT_NAME = "output.weight"
EMBEDDING_NAME = "token_embd.weight"
OUTPUT_TYPES = ("own", "f16", "q8_0")
METADATA_PREFIX = "smoothie."

# byte offsets, inside one block, of the float16 factors that every value of the block is proportional to
# (ggml-common.h's block_* structs)
_BLOCK_FACTORS: dict[str, tuple[int, ...]] = {
    "Q4_0": (0,),  # d, qs[16]
    "Q4_1": (0, 2),  # d, m, qs[16]
    "Q5_0": (0,),  # d, qh[4], qs[16]
    "Q5_1": (0, 2),  # d, m, qh[4], qs[16]
    "Q8_0": (0,),  # d, qs[32]
    "Q2_K": (80, 82),  # scales[16], qs[64], d, dmin
    "Q3_K": (108,),  # hmask[32], qs[64], scales[12], d
    "Q4_K": (0, 2),  # d, dmin, scales[12], qs[128]
    "Q5_K": (0, 2),  # d, dmin, scales[12], qh[32], qs[128]
    "Q6_K": (208,),  # ql[128], qh[64], scales[16], d
}
_FLOAT_TYPES = {"F32": np.float32, "F16": np.float16}


@dataclass(frozen=True)
class GgufSmoothResult:
    output: Path
    rows_scaled: int
    output_tensor: str
    source_tensor: str  # output.weight, or token_embd.weight where the GGUF tied them
    source_type: str
    output_type: str
    added_output: bool
    bytes_written: int
    verified: bool
    seconds: float


def _rows_bytes(tensor: Any) -> np.ndarray:
    """A tensor's data as a [rows, bytes per row] uint8 copy (GGUF rows are the last shape axis reversed)."""
    rows = int(tensor.shape[-1]) if len(tensor.shape) > 1 else 1
    return np.array(tensor.data, copy=True).view(np.uint8).reshape(rows, -1)


def scale_rows_in_type(rows: np.ndarray, type_name: str, row_scales: np.ndarray) -> np.ndarray:
    """`rows` ([rows, bytes per row] uint8 of a `type_name` tensor) with row i's values times row_scales[i],
    in the same type. Raises KeyError for a type without block factors here."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    out = rows.copy()
    touched = np.flatnonzero(row_scales != 1.0)
    if type_name in _FLOAT_TYPES:
        values = out.view(_FLOAT_TYPES[type_name])
        values[touched] = (values[touched].astype(np.float32) * row_scales[touched, None]).astype(
            values.dtype
        )
        return out
    if type_name == "BF16":
        from gguf.quants import dequantize, quantize

        kind = GGMLQuantizationType.BF16
        scaled = dequantize(out[touched], kind) * row_scales[touched, None]
        out[touched] = quantize(scaled.astype(np.float32), kind)
        return out
    offsets = _BLOCK_FACTORS[type_name]
    _, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    blocks = out[touched].reshape(len(touched), -1, block_bytes)  # [rows, blocks per row, block bytes]
    factor = row_scales[touched, None].astype(np.float32)
    for offset in offsets:
        half = np.ascontiguousarray(blocks[:, :, offset : offset + 2]).view(np.float16)[..., 0]
        scaled = (half.astype(np.float32) * factor).astype(np.float16)
        blocks[:, :, offset : offset + 2] = scaled[..., None].view(np.uint8)
    out[touched] = blocks.reshape(len(touched), -1)
    return out


def scaled_output(tensor: Any, row_scales: np.ndarray, output_type: str) -> tuple[np.ndarray, str]:
    """The scaled output tensor as [rows, bytes per row] uint8 and its GGML type name."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    type_name = tensor.tensor_type.name
    rows = _rows_bytes(tensor)
    if output_type == "own":
        try:
            return scale_rows_in_type(rows, type_name, row_scales), type_name
        except KeyError:
            output_type = "f16"  # no block factors known for this type: the exact rows, in float16
    target = GGMLQuantizationType.F16 if output_type == "f16" else GGMLQuantizationType.Q8_0
    exact = dequantize(rows, tensor.tensor_type).astype(np.float32) * row_scales[:, None]
    return quantize(exact, target).view(np.uint8).reshape(rows.shape[0], -1), target.name


def smooth_gguf(
    source: Path,
    output: Path,
    scales: TokenScales,
    *,
    output_type: str = "own",
    force: bool = False,
    verify: bool = True,
    metadata: dict[str, Any] | None = None,
    progress: Progress = no_progress,
) -> GgufSmoothResult:
    """Write `output`: the GGUF `source` with its output rows scaled by `scales`. The input is never
    modified; `metadata` (str/int/float/bool values) is added under `smoothie.` keys."""
    from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter, Keys

    start = time.perf_counter()
    source, output = Path(source).resolve(), Path(output).resolve()
    if output_type not in OUTPUT_TYPES:
        raise SmoothieError(f"GGUF output type must be one of {', '.join(OUTPUT_TYPES)}, not '{output_type}'")
    if output == source:
        raise CannotWrite(f"output {output} is the input file; choose another output file", setting="output")
    if output.suffix != ".gguf":
        raise BadValue(f"output {output} must end in .gguf when the input is a GGUF file", setting="output")
    if output.exists() and not force:
        raise CannotWrite(f"output {output} already exists; give this to replace it", setting="force")
    reader = read_gguf(source)
    tensors = {t.name: t for t in reader.tensors}
    name = OUTPUT_NAME if OUTPUT_NAME in tensors else EMBEDDING_NAME
    if name not in tensors or len(tensors[name].shape) != 2:
        raise SmoothieError(
            f"{source} has neither {OUTPUT_NAME} nor {EMBEDDING_NAME} as a 2-D tensor; smoothie needs a "
            "causal LM's output head"
        )
    original = tensors[name]
    row_scales = scales.vector(int(original.shape[-1]))
    new_rows, new_type = scaled_output(original, row_scales, output_type)
    architecture = str(reader.fields[Keys.General.ARCHITECTURE].contents())

    output.parent.mkdir(parents=True, exist_ok=True)
    temp = output.parent / f".{output.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        writer = GGUFWriter(temp, architecture, endianess=reader.endianess)
        writer.data_alignment = reader.alignment
        for field in reader.fields.values():
            if field.name == Keys.General.ARCHITECTURE or field.name.startswith(("GGUF.", METADATA_PREFIX)):
                continue  # GGUFWriter writes these itself; an older smoothing record is replaced
            kind = field.types[0]
            sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
        for key, value in (metadata or {}).items():
            _add_metadata(writer, METADATA_PREFIX + key, value)
        plan: list[tuple[str, Any]] = []  # (name, data) in file order
        for tensor in reader.tensors:
            plan.append((tensor.name, tensor.data))
            if tensor.name == EMBEDDING_NAME and name == EMBEDDING_NAME:
                plan.append((OUTPUT_NAME, None))  # the separate output head, right after the embedding
        total = sum(int(t.n_bytes) for t in reader.tensors) + (
            new_rows.nbytes if name == EMBEDDING_NAME else 0
        )
        for tensor_name, data in plan:
            if tensor_name == OUTPUT_NAME:
                writer.add_tensor_info(
                    OUTPUT_NAME, new_rows.shape, np.dtype(np.uint8), new_rows.nbytes,
                    GGMLQuantizationType[new_type],
                )  # fmt: skip
            else:
                t = tensors[tensor_name]
                writer.add_tensor_info(t.name, data.shape, data.dtype, int(t.n_bytes), t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        done = 0
        for tensor_name, data in plan:
            block = new_rows if tensor_name == OUTPUT_NAME else data
            writer.write_tensor_data(block, tensor_endianess=reader.endianess)
            done += int(block.nbytes)
            progress("writing GGUF", done, total)
        writer.close()
        if verify:
            progress("verifying GGUF", 0, 1)
            verify_smoothed_gguf(reader, temp, row_scales)
            progress("verifying GGUF", 1, 1)
        os.replace(temp, output)
    except OSError as error:
        raise CannotWrite(
            f"cannot write {output}: {error.strerror or error}; free space or choose another output file",
            setting="output",
        ) from None
    finally:
        temp.unlink(missing_ok=True)
    return GgufSmoothResult(
        output=output, rows_scaled=int((row_scales != 1.0).sum()), output_tensor=OUTPUT_NAME,
        source_tensor=name, source_type=original.tensor_type.name, output_type=new_type,
        added_output=name == EMBEDDING_NAME, bytes_written=output.stat().st_size, verified=verify,
        seconds=time.perf_counter() - start,
    )  # fmt: skip


def _add_metadata(writer: Any, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_int64(key, value)
    elif isinstance(value, float):
        writer.add_float64(key, value)
    else:
        writer.add_string(key, str(value))


def scaling_error(
    original: Any, rows: np.ndarray, type_name: str, row_scales: np.ndarray
) -> dict[str, float]:
    """How far a written output tensor is from exact float scaling of the original's dequantised rows, on the
    scaled rows: max and mean absolute error, and the max relative to each row's largest magnitude."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    touched = np.flatnonzero(row_scales != 1.0)
    exact = dequantize(_rows_bytes(original)[touched], original.tensor_type) * row_scales[touched, None]
    written = dequantize(rows[touched], GGMLQuantizationType[type_name])
    error = np.abs(written.astype(np.float64) - exact)
    scale = np.abs(exact).max(1, keepdims=True)
    relative = error / np.where(scale == 0, 1, scale)
    return {"max_abs": float(error.max()), "mean_abs": float(error.mean()), "max_rel": float(relative.max())}


def verify_smoothed_gguf(old: Any, written: Path, row_scales: np.ndarray) -> None:
    """Re-read `written` against the source's reader `old`: every tensor but the output byte for byte, and
    the output's rows within float16 rounding of the source rows × their scale. (Parsing a GGUF's metadata
    is most of the time here, so the source is not parsed again.)"""
    new = read_gguf(written)
    old_tensors = {t.name: t for t in old.tensors}
    new_tensors = {t.name: t for t in new.tensors}
    missing = set(old_tensors) - set(new_tensors)
    if missing or OUTPUT_NAME not in new_tensors:
        raise SmoothieError(
            f"the written GGUF lacks {sorted(missing) or [OUTPUT_NAME]}; nothing was replaced"
        )
    for tensor_name, tensor in old_tensors.items():
        if tensor_name == OUTPUT_NAME:
            continue
        if not np.array_equal(
            np.asarray(tensor.data).view(np.uint8), np.asarray(new_tensors[tensor_name].data).view(np.uint8)
        ):
            raise SmoothieError(
                f"the written GGUF's {tensor_name} differs from the input's; nothing was replaced"
            )
    source_tensor = old_tensors.get(OUTPUT_NAME) or old_tensors[EMBEDDING_NAME]
    out = new_tensors[OUTPUT_NAME]
    error = scaling_error(source_tensor, _rows_bytes(out), out.tensor_type.name, row_scales)
    if error["max_rel"] > 2e-2:  # float16 factors: ~1e-3; Q8_0 re-quantisation: ~1e-2 of a row's range
        raise SmoothieError(
            f"the written GGUF's output rows are off by {error['max_rel']:.2g} of their range; "
            "nothing was replaced"
        )
