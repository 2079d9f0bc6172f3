"""Write a smoothed checkpoint: only the lm_head rows change, streamed, tie-safe, atomic, verified.

Every shard but the one holding lm_head is copied unchanged; that shard is rewritten tensor by tensor
(`models.safetensors_io`), the scaled tensor in row chunks computed in float32 and stored in the
checkpoint's dtype. When the model ties lm_head to embed_tokens (Qwen2.5 0.5B–3B, small Qwen3) a separate
`lm_head.weight` is written and `tie_word_embeddings` set to false, so the input embeddings stay
byte-for-byte unchanged (smoothie-qwen scales the shared tensor, which changes the inputs too).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from smoothie_cli.atomic import atomic_directory
from smoothie_cli.errors import CannotWrite, SmoothieError
from smoothie_cli.jsonfile import first_line, read_json_model
from smoothie_cli.models.resolve import read_config_json
from smoothie_cli.models.safetensors_io import (
    CHUNK_BYTES,
    FLOAT_DTYPES,
    OutputTensor,
    ShardPlan,
    TensorInfo,
    copy_range,
    iter_row_chunks,
    read_header,
    read_index,
    scale_rows,
    write_safetensors,
)
from smoothie_cli.progress import Progress, no_progress
from smoothie_cli.smoothing.scales import TokenScales

INDEX_NAME = "model.safetensors.index.json"
_SPOT_BYTES = 1 << 20
SINGLE_NAME = "model.safetensors"
RECORD_NAME = "smoothie.json"  # what a smooth scaled, written into its output
_NOT_COPIED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5", ".ckpt")
_NOT_COPIED_NAMES = {INDEX_NAME, "config.json", "README.md", RECORD_NAME, "smoothie-embedded.json"}


@dataclass(frozen=True)
class EmbeddingLayout:
    output_name: str  # the lm_head weight, e.g. "lm_head.weight"
    input_name: str  # the input embedding weight, e.g. "model.embed_tokens.weight"
    tied: bool


_OUTPUT_NAMES = ("lm_head.weight", "output.weight", "embed_out.weight")
_INPUT_NAMES = (
    "model.embed_tokens.weight",
    "transformer.wte.weight",
    "model.language_model.embed_tokens.weight",
)


def embedding_layout(model_dir: Path, tensor_names: set[str]) -> EmbeddingLayout:
    """Names of the output and input embedding weights, and whether the config ties them.

    The common names are recognised directly; otherwise the architecture is built on the meta device
    (no memory) and asked for its output/input embedding modules.
    """
    config = read_config_json(model_dir)
    tied = config.get("tie_word_embeddings")
    output = next((n for n in _OUTPUT_NAMES if n in tensor_names), None)
    inputs = next((n for n in _INPUT_NAMES if n in tensor_names), None)
    if tied is not None and inputs is not None and (output is not None or tied):
        return EmbeddingLayout(output or "lm_head.weight", inputs, bool(tied))
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        # one layer is enough to name the modules; a damaged layer count must not build millions
        hf_config = AutoConfig.from_pretrained(str(model_dir), num_hidden_layers=1)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(hf_config)
    except Exception as error:
        raise SmoothieError(
            f"cannot tell where {model_dir} keeps its lm_head ({first_line(error)})"
        ) from None
    names = {id(m): n for n, m in model.named_modules()}
    return EmbeddingLayout(
        f"{names[id(model.get_output_embeddings())]}.weight",
        f"{names[id(model.get_input_embeddings())]}.weight",
        bool(getattr(hf_config, "tie_word_embeddings", False)),
    )


@dataclass
class Checkpoint:
    directory: Path
    weight_map: dict[str, str]  # tensor name → shard file name
    index: dict[str, Any] | None  # model.safetensors.index.json when sharded

    @property
    def shard_names(self) -> list[str]:
        return sorted(set(self.weight_map.values()))


def open_checkpoint(model_dir: Path) -> Checkpoint:
    index_path = model_dir / INDEX_NAME
    if index_path.is_file():
        index = read_index(index_path)
        return Checkpoint(model_dir, dict(index.weight_map), index.model_dump(exclude_unset=True))
    single = model_dir / SINGLE_NAME
    if single.is_file():
        return Checkpoint(model_dir, dict.fromkeys(read_header(single).tensors, SINGLE_NAME), None)
    if any(model_dir.glob("*.bin")) or any(model_dir.glob("*.pt")):
        raise SmoothieError(
            f"{model_dir} has only pickle weights (.bin/.pt); smoothie reads safetensors only: convert with "
            "transformers (from_pretrained, then save_pretrained) first"
        )
    raise SmoothieError(f"{model_dir} holds no safetensors weights (model.safetensors or {INDEX_NAME})")


class _LmHead(BaseModel):
    source_tensor: str
    output_tensor: str
    shard: str


class SmoothingRecord(BaseModel):
    """smoothie.json in a smoothed checkpoint: what was scaled, by how much (plus its provenance)."""

    model_config = ConfigDict(extra="allow")
    base_model: str | None = None
    min_scale: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    smoothness: Annotated[float, Field(gt=1.0, allow_inf_nan=False)] | None = None
    lm_head: _LmHead
    untied: StrictBool
    rows: Annotated[StrictInt, Field(ge=0)]
    scaled_rows: dict[
        Annotated[str, StringConstraints(pattern=r"^[0-9]+$")], Annotated[float, Field(ge=0, le=1)]
    ]


def read_smoothing_record(model_dir: Path) -> SmoothingRecord | None:
    """The smoothie.json of a checkpoint smoothie wrote, or None for any other checkpoint."""
    path = Path(model_dir) / RECORD_NAME
    if not path.is_file():
        return None
    return read_json_model(path, SmoothingRecord, "smoothing record")


@dataclass
class SmoothResult:
    output: Path
    source_tensor: str
    output_tensor: str
    untied: bool
    rows_scaled: int
    rows_total: int
    rewritten_shard: str
    copied_shards: int
    bytes_written: int
    verified: bool
    seconds: float


def _scaled_writer(source_path: Path, info: TensorInfo, scales: Any, progress: Progress, label: str):
    """Writes `info`'s rows scaled by `scales` (float32 compute, stored in the tensor's dtype)."""

    def write(out: BinaryIO) -> None:
        for first, rows in iter_row_chunks(source_path, info):
            out.write(scale_rows(rows, info.dtype, scales[first : first + rows.shape[0]]).data)
            progress(label, first + rows.shape[0], info.shape[0])

    return write


def _raw_writer(source_path: Path, info: TensorInfo):
    def write(out: BinaryIO) -> None:
        with open(source_path, "rb") as source:
            copy_range(source, info.start, info.nbytes, out)

    return write


def _copy_file(source: Path, target: Path, progress: Progress, done: list[int], total: int) -> None:
    # copy_file_range: an in-kernel copy, and a reflink (instant, no extra space) on btrfs/XFS.
    # Never a hard link: a later in-place write to the output would change the input model.
    size = source.stat().st_size  # follows hub-cache symlinks to the blob
    with open(source, "rb") as src, open(target, "wb") as dst:
        copy_range(src, 0, size, dst)
    done[0] += size
    progress("copying unchanged files", done[0], total)


def smooth_checkpoint(
    model_dir: Path,
    output: Path,
    scales: TokenScales,
    *,
    force: bool = False,
    verify: bool = True,
    card: str = "",
    provenance: dict[str, Any] | None = None,
    progress: Progress = no_progress,
) -> SmoothResult:
    """Write `output`: `model_dir` with its lm_head rows scaled. The input is never modified."""
    start = time.perf_counter()
    model_dir, output = Path(model_dir).resolve(), Path(output).resolve()
    if output == model_dir or model_dir in output.parents:
        raise CannotWrite(
            f"{output} is inside the input model; choose another output directory", setting="output"
        )
    if output.exists() and not force:
        raise CannotWrite(f"output {output} already exists; give this to replace it", setting="force")
    checkpoint = open_checkpoint(model_dir)
    layout = embedding_layout(model_dir, set(checkpoint.weight_map))
    if layout.output_name in checkpoint.weight_map:
        source_name = layout.output_name
    elif layout.tied and layout.input_name in checkpoint.weight_map:
        source_name = layout.input_name
    else:
        raise SmoothieError(
            f"no {layout.output_name} (nor a tied {layout.input_name}) in {model_dir}; "
            "smoothie needs a causal LM checkpoint with an lm_head"
        )
    untie = layout.tied
    add_lm_head = source_name != layout.output_name  # tied and stored once: write a separate lm_head
    shard_name = checkpoint.weight_map[source_name]
    shard = read_header(model_dir / shard_name)
    if source_name not in shard.tensors:
        raise SmoothieError(f"{INDEX_NAME} puts {source_name} in {shard_name}, which does not hold it")
    info = shard.tensors[source_name]
    if info.dtype not in FLOAT_DTYPES or len(info.shape) != 2:
        raise SmoothieError(
            f"{source_name} is {info.dtype} {list(info.shape)}; smoothie scales 2-D float weights"
        )
    rows = info.shape[0]
    vector = scales.vector(rows)
    plan = ShardPlan(metadata=shard.metadata)
    for tensor in shard.ordered():
        if tensor.name == source_name and not add_lm_head:
            writer = _scaled_writer(
                model_dir / shard_name, tensor, vector, progress, "writing scaled lm_head"
            )
        else:
            writer = _raw_writer(model_dir / shard_name, tensor)
        plan.tensors.append(OutputTensor(tensor.name, tensor.dtype, tensor.shape, tensor.nbytes, writer))
    if add_lm_head:
        writer = _scaled_writer(model_dir / shard_name, info, vector, progress, "writing scaled lm_head")
        plan.tensors.append(OutputTensor(layout.output_name, info.dtype, info.shape, info.nbytes, writer))

    others = [p for p in sorted(model_dir.iterdir()) if _is_copied(p) or (p.name in checkpoint.shard_names)]
    others = [p for p in others if p.name != shard_name]
    total = sum(p.stat().st_size for p in others if p.is_file())
    done = [0]
    with atomic_directory(output, replace=force) as staging:
        for path in others:
            if path.is_dir():
                shutil.copytree(path, staging / path.name)
            else:
                _copy_file(path, staging / path.name, progress, done, total)
        write_safetensors(staging / shard_name, plan)
        _write_config(model_dir, staging, untie)
        if checkpoint.index is not None:
            index = json.loads(json.dumps(checkpoint.index))
            if add_lm_head:
                index["weight_map"][layout.output_name] = shard_name
                metadata = index["metadata"] = index.get("metadata") or {}
                if metadata.get("total_size") is not None:
                    metadata["total_size"] = int(metadata["total_size"]) + info.nbytes
            (staging / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        if card:
            (staging / "README.md").write_text(card, encoding="utf-8")
        record = dict(provenance or {})
        record.update(
            {
                "lm_head": {
                    "source_tensor": source_name,
                    "output_tensor": layout.output_name,
                    "shard": shard_name,
                },
                "untied": untie,
                "rows": rows,
                "scaled_rows": {str(i): s for i, s in scales.scales.items() if i < rows},
            }
        )
        (staging / RECORD_NAME).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        if verify:
            verify_smoothed(model_dir, staging, source_name, layout.output_name, vector, untie, progress)
    written = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    return SmoothResult(
        output=output,
        source_tensor=source_name,
        output_tensor=layout.output_name,
        untied=untie,
        rows_scaled=int((vector != 1).sum()),
        rows_total=rows,
        rewritten_shard=shard_name,
        copied_shards=len(checkpoint.shard_names) - 1,
        bytes_written=written,
        verified=verify,
        seconds=time.perf_counter() - start,
    )


def _is_copied(path: Path) -> bool:
    if path.name.startswith(".") or path.name in _NOT_COPIED_NAMES:
        return False
    return path.is_dir() or not path.name.endswith(_NOT_COPIED_SUFFIXES)


def _write_config(model_dir: Path, staging: Path, untie: bool) -> None:
    config = read_config_json(model_dir)
    if untie:
        config["tie_word_embeddings"] = False
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def verify_smoothed(
    model_dir: Path,
    output_dir: Path,
    source_name: str,
    output_name: str,
    scales: Any,
    untied: bool,
    progress: Progress = no_progress,
) -> None:
    """Reopen the output: the lm_head rows equal the input's times their scale, every other byte unchanged."""
    import numpy as np

    before, after = open_checkpoint(model_dir), open_checkpoint(output_dir)
    config = read_config_json(output_dir)
    if untied and config.get("tie_word_embeddings", True):
        raise SmoothieError("verification failed: the output still ties lm_head to the input embeddings")
    for name, shard in before.weight_map.items():
        if after.weight_map.get(name) != shard:
            raise SmoothieError(f"verification failed: {name} is missing from the output")
    source_file = read_header(model_dir / before.weight_map[source_name])
    result_file = read_header(output_dir / after.weight_map[output_name])
    src, dst = source_file.tensors[source_name], result_file.tensors[output_name]
    if (src.dtype, src.shape) != (dst.dtype, dst.shape):
        raise SmoothieError(f"verification failed: {output_name} changed dtype or shape")
    chunks = zip(iter_row_chunks(source_file.path, src), iter_row_chunks(result_file.path, dst))
    for (first, old), (_, new) in chunks:
        expected = scale_rows(old, src.dtype, scales[first : first + old.shape[0]])
        if not np.array_equal(expected, new):
            bad = first + int(np.flatnonzero((expected != new).any(axis=1))[0])
            raise SmoothieError(f"verification failed: row {bad} of {output_name} is not input × its scale")
        progress("verifying", first + old.shape[0], src.shape[0])
    shard = before.weight_map[source_name]
    in_place = source_name == output_name
    _check_unchanged(
        model_dir / shard, output_dir / shard, skip=source_name if in_place else None, full={source_name}
    )
    for other in set(before.weight_map.values()) - {shard}:  # copied shards: same header, same size
        old, new = model_dir / other, output_dir / other
        if read_header(old).tensors != read_header(new).tensors or old.stat().st_size != new.stat().st_size:
            raise SmoothieError(f"verification failed: shard {other} differs from the input's")


def _check_unchanged(old_path: Path, new_path: Path, skip: str | None, full: set[str]) -> None:
    """Tensors of the rewritten shard but `skip` are the input's: `full` ones compared byte for byte, the
    rest (copied by the kernel) by header and by sampled windows at their start, middle and end."""
    old_file, new_file = read_header(old_path), read_header(new_path)
    with open(old_path, "rb") as a, open(new_path, "rb") as b:
        for name, old in old_file.tensors.items():
            if name == skip:
                continue
            new = new_file.tensors.get(name)
            if new is None or (old.dtype, old.shape, old.nbytes) != (new.dtype, new.shape, new.nbytes):
                raise SmoothieError(f"verification failed: {name} changed")
            if name in full:
                windows = [(o, min(CHUNK_BYTES, old.nbytes - o)) for o in range(0, old.nbytes, CHUNK_BYTES)]
            else:
                size = min(_SPOT_BYTES, old.nbytes)
                windows = [(0, size), ((old.nbytes - size) // 2, size), (old.nbytes - size, size)]
            for offset, length in windows:
                if _read(a, old.start + offset, length) != _read(b, new.start + offset, length):
                    raise SmoothieError(f"verification failed: {name} is not byte-for-byte unchanged")


def _read(handle: BinaryIO, start: int, length: int) -> bytes:
    handle.seek(start)
    return handle.read(length)
