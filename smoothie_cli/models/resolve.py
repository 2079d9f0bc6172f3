"""One resolver for every command: turn a MODEL argument into files on disk.

A MODEL is `embedded:<name>`, a local Hugging Face model directory, a `.gguf` file, a PEFT adapter
directory (its `adapter_config.json` names the base model), or a Hugging Face Hub id. Resolving is cheap
and touches nothing; `tokenizer_location` fetches only tokenizer files, `model_directory` the weights too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints

from smoothie_cli.config import DEFAULT_MODEL
from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import read_json, validate
from smoothie_cli.progress import Progress, no_progress

Kind = Literal["embedded", "local", "gguf", "peft", "hub"]
EMBEDDED_PREFIX = "embedded:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
ADAPTER_CONFIG = "adapter_config.json"
_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
TOKENIZER_PATTERNS = [
    "config.json",
    "generation_config.json",
    "tokenizer*",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.*",
    "*.tiktoken",
    "tokenizer.model",
    "adapter_config.json",  # tells a PEFT adapter on the hub (e.g. IanLi233/Cautious_Qwen) from a full model
]
WEIGHT_PATTERNS = [*TOKENIZER_PATTERNS, "*.safetensors", "*.safetensors.index.json", "*.md"]


@dataclass(frozen=True)
class ModelSource:
    """What a MODEL argument points at; `base` is set for PEFT adapters."""

    spec: str
    kind: Kind
    location: str
    base: ModelSource | None = None

    @property
    def path(self) -> Path:
        return Path(self.location)


def resolve_model(spec: str | None) -> ModelSource:
    """Classify a MODEL argument (None → the embedded default). Fails fast with a fixable message."""
    spec = (spec or DEFAULT_MODEL).strip()
    if not spec:
        raise SmoothieError("empty model name; pass a hub id, a directory, a .gguf file or embedded:NAME")
    if spec.startswith(EMBEDDED_PREFIX):
        from smoothie_cli.models.embedded import EMBEDDED_ADAPTERS, embedded_adapter_dir, embedded_model

        name = spec.removeprefix(EMBEDDED_PREFIX)
        if name in EMBEDDED_ADAPTERS:  # an adapter shipped in the package: a PEFT source on an embedded base
            return _resolve_path(spec, embedded_adapter_dir(name))
        return ModelSource(spec, "embedded", embedded_model(spec.removeprefix(EMBEDDED_PREFIX)).name)
    path = Path(spec).expanduser()
    if path.exists():
        return _resolve_path(spec, path)
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise SmoothieError(f"model path '{spec}' does not exist; check the path")
    if _HUB_ID.match(spec):
        return ModelSource(spec, "hub", spec)
    raise SmoothieError(
        f"model '{spec}' is not a path, a Hugging Face id (org/name) or embedded:NAME; "
        "try embedded:qwen2.5-coder-0.5b-instruct"
    )


class AdapterConfig(BaseModel):
    """The part of a PEFT adapter_config.json smoothie reads (peft checks the rest when it loads it)."""

    model_config = ConfigDict(extra="allow")
    base_model_name_or_path: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ModelConfig(BaseModel):
    """The part of a model's config.json smoothie reads itself (transformers checks the rest)."""

    model_config = ConfigDict(extra="allow")
    tie_word_embeddings: StrictBool | None = None  # a string "false" would read as true


def read_adapter_config(directory: Path) -> AdapterConfig:
    path = Path(directory) / ADAPTER_CONFIG
    document = read_json(path, "adapter config")
    if not document.get("base_model_name_or_path"):
        raise SmoothieError(f"{path} names no base_model_name_or_path; add the base model there")
    return validate(AdapterConfig, document, f"adapter config {path}")


def read_config_json(directory: Path) -> dict[str, Any]:
    """A model directory's config.json as a dict, with the fields smoothie uses checked."""
    path = Path(directory) / "config.json"
    document = read_json(path, "model config")
    validate(ModelConfig, document, f"model config {path}")
    return document


def _resolve_path(spec: str, path: Path) -> ModelSource:
    if path.is_file():
        if path.suffix == ".gguf":
            return ModelSource(spec, "gguf", str(path.resolve()))
        raise SmoothieError(
            f"'{spec}' is a file but not a .gguf model; pass a model directory or a .gguf file"
        )
    if (path / ADAPTER_CONFIG).is_file():
        base = resolve_model(read_adapter_config(path).base_model_name_or_path)
        return ModelSource(spec, "peft", str(path.resolve()), base)
    if any((path / name).is_file() for name in _MODEL_FILES):
        return ModelSource(spec, "local", str(path.resolve()))
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSource(spec, "gguf", str(ggufs[0].resolve()))
    raise SmoothieError(
        f"directory '{spec}' holds no config.json, tokenizer files, adapter_config.json or single .gguf: "
        "not a model directory"
    )


def _hub_snapshot(repo_id: str, patterns: list[str]) -> Path:
    """Download (or find in the HF cache) the files of a hub model that match `patterns`."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except GatedRepoError:
        raise SmoothieError(
            f"'{repo_id}' is gated on the Hugging Face Hub: accept its licence on the model page, "
            "then log in with `hf auth login`"
        ) from None
    except RepositoryNotFoundError:
        raise SmoothieError(
            f"no model '{repo_id}' on the Hugging Face Hub; check the id (or log in for a private model)"
        ) from None
    except LocalEntryNotFoundError:
        raise SmoothieError(
            f"model '{repo_id}' is not in the Hugging Face cache and the Hub cannot be reached; connect to "
            "the internet, or pass a local directory, a .gguf file or embedded:NAME"
        ) from None


def concrete(source: ModelSource, progress: Progress = no_progress) -> ModelSource:
    """A hub id that holds a PEFT adapter becomes a `peft` source with its base resolved; others unchanged.

    A hub id's kind is only known once its files are here, so this fetches the small files first and the
    adapter weights only when it is an adapter.
    """
    if source.kind != "hub":
        return source
    snapshot = _hub_snapshot(source.location, TOKENIZER_PATTERNS)
    if not (snapshot / "adapter_config.json").is_file():
        return source
    progress(f"fetching adapter {source.spec}", 0, 1)
    snapshot = _hub_snapshot(source.location, WEIGHT_PATTERNS)
    progress(f"fetching adapter {source.spec}", 1, 1)
    return _resolve_path(source.spec, snapshot)


def tokenizer_location(source: ModelSource, progress: Progress = no_progress) -> Path:
    """A directory with the tokenizer files (or a .gguf file), without downloading or loading weights."""
    return _local_files(source, weights=False, progress=progress)


def model_directory(source: ModelSource, progress: Progress = no_progress) -> Path:
    """The local files of a full model: a checkpoint directory, or a .gguf file (PEFT: the base's)."""
    return _local_files(source, weights=True, progress=progress)


def _local_files(source: ModelSource, weights: bool, progress: Progress) -> Path:
    if source.kind == "embedded":
        from smoothie_cli.models.embedded import ensure_embedded

        return ensure_embedded(source.location, progress)
    if source.kind == "hub":
        return _hub_snapshot(source.location, WEIGHT_PATTERNS if weights else TOKENIZER_PATTERNS)
    if source.kind == "peft":
        adapter = source.path
        has_tokenizer = (adapter / "tokenizer.json").is_file() or (
            adapter / "tokenizer_config.json"
        ).is_file()
        if not weights and has_tokenizer:
            return adapter
        assert source.base is not None
        return _local_files(source.base, weights, progress)
    return source.path
