"""Token id → raw bytes, read from tokenizer files without loading any model weights.

Byte-level BPE (GPT-2, Qwen, Llama 3) stores each token as a string of stand-in characters, one per byte
(`bytes_to_unicode`); sentencepiece-style vocabularies use `▁` for a space and `<0xNN>` for byte fallback.
Both reduce to the bytes a token writes, which is what target/broken identification needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import first_line, read_json, validate

MAX_VOCAB_SIZE = 1 << 22  # token ids above this are damage, not a vocabulary (the largest real ones: ~256k)


@dataclass(frozen=True)
class AddedToken:
    id: int
    content: str
    special: bool


@dataclass
class Vocabulary:
    """The base vocabulary as bytes (ids below `size`), plus the added/special tokens."""

    token_bytes: list[bytes | None]  # None: an added/special token that sits inside the base id range
    added: list[AddedToken] = field(default_factory=list)
    source: str = ""

    @property
    def size(self) -> int:
        return len(self.token_bytes)

    def digest(self) -> str:
        """sha256 over the base tokens' bytes: identifies the vocabulary an analysis belongs to."""
        h = hashlib.sha256()
        for b in self.token_bytes:
            if b is None:
                h.update(b"\xff\xff\xff\xff")
            else:
                h.update(len(b).to_bytes(4, "little"))
                h.update(b)
        return h.hexdigest()


@cache
def byte_decoder() -> dict[str, int]:
    """GPT-2's stand-in character → byte table (the inverse of `bytes_to_unicode`)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def byte_level_bytes(token: str) -> bytes:
    table = byte_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError:
        # Not a byte-level string (e.g. an added token kept in the model vocab): take its text.
        return token.encode("utf-8")


def sentencepiece_bytes(token: str) -> bytes:
    if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        try:
            return bytes([int(token[3:5], 16)])
        except ValueError:
            pass
    return token.replace("▁", " ").encode("utf-8")


def _is_byte_level(spec: TokenizerJson) -> bool:
    """True when the tokenizer's decoder (or pre-tokenizer) is ByteLevel."""

    def has_byte_level(node: Any, depth: int = 0) -> bool:
        if not isinstance(node, dict) or depth > 16:
            return False
        if node.get("type") == "ByteLevel":
            return True
        children = [
            c for key in ("decoders", "pretokenizers") if isinstance(node.get(key), list) for c in node[key]
        ]
        return any(has_byte_level(child, depth + 1) for child in children)

    return has_byte_level(spec.decoder) or has_byte_level(spec.pre_tokenizer)


class _Added(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Annotated[StrictInt, Field(ge=0, lt=MAX_VOCAB_SIZE)]
    content: StrictStr
    special: StrictBool = False


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str | None = None
    vocab: (
        dict[str, Annotated[StrictInt, Field(ge=0, lt=MAX_VOCAB_SIZE)]] | list[tuple[StrictStr, float]] | None
    ) = None


class TokenizerJson(BaseModel):
    """The parts of a tokenizers `tokenizer.json` that give each token's bytes."""

    model_config = ConfigDict(extra="allow")
    model: _Model
    added_tokens: list[_Added] = Field(default_factory=list)
    decoder: Any = None
    pre_tokenizer: Any = None


def vocabulary_from_tokenizer_json(spec: Any, source: str = "tokenizer.json") -> Vocabulary:
    """The Vocabulary of a parsed tokenizer.json (checked: vocabulary ids, added tokens)."""
    if not isinstance(spec, dict):
        raise SmoothieError(f"{source} should hold a JSON object at the top level")
    checked = validate(TokenizerJson, spec, source)
    vocab = checked.model.vocab
    if checked.model.type == "Unigram" and isinstance(vocab, list):
        strings = [row[0] for row in vocab]
    elif isinstance(vocab, dict):
        strings_by_id: dict[int, str] = {i: s for s, i in vocab.items()}
        if len(strings_by_id) != len(vocab):
            raise SmoothieError(f"{source}: two tokens of the vocabulary share an id")
        size = max(strings_by_id, default=-1) + 1
        listed = len(vocab) + len(checked.added_tokens)
        if size > 2 * listed + 1024:  # ids leave room for added tokens, not for millions of holes
            raise SmoothieError(f"{source}: token ids run to {size - 1:,} for {listed:,} tokens; damaged")
        strings = [strings_by_id.get(i, "") for i in range(size)]
    else:
        raise SmoothieError(f"{source}: no vocabulary found in the tokenizer's model section")
    to_bytes = byte_level_bytes if _is_byte_level(checked) else sentencepiece_bytes
    added = [AddedToken(t.id, t.content, t.special) for t in checked.added_tokens]
    added_ids = {t.id for t in added}
    token_bytes: list[bytes | None] = [None if i in added_ids else to_bytes(s) for i, s in enumerate(strings)]
    return Vocabulary(token_bytes, sorted(added, key=lambda t: t.id), source)


# GGUF token types (llama.cpp's LLAMA_TOKEN_TYPE_*)
_GGUF_NORMAL, _GGUF_CONTROL, _GGUF_USER_DEFINED, _GGUF_UNUSED, _GGUF_BYTE = 1, 3, 4, 5, 6


def vocabulary_from_gguf(path: Path) -> Vocabulary:
    from smoothie_cli.gguf_file import int_array, read_gguf, string_array, string_value

    reader = read_gguf(path)
    tokens = string_array(reader, "tokenizer.ggml.tokens", path)
    if not tokens:
        raise SmoothieError(f"{path} carries no tokenizer (no tokenizer.ggml.tokens)")
    types = int_array(reader, "tokenizer.ggml.token_type", path)
    kind = string_value(reader, "tokenizer.ggml.model", path) or "gpt2"
    if types is not None and len(types) != len(tokens):
        raise SmoothieError(f"{path}: {len(types)} token types for {len(tokens)} tokens; the file is damaged")
    to_bytes = byte_level_bytes if kind == "gpt2" else sentencepiece_bytes
    types = types if types is not None else [_GGUF_NORMAL] * len(tokens)
    regular = {_GGUF_NORMAL, _GGUF_BYTE}
    size = max((i for i, t in enumerate(types) if t in regular), default=-1) + 1
    token_bytes: list[bytes | None] = []
    added: list[AddedToken] = []
    for i, (text, kind_id) in enumerate(zip(tokens, types)):
        if kind_id in regular and i < size:
            token_bytes.append(to_bytes(text))
            continue
        if kind_id in (_GGUF_CONTROL, _GGUF_USER_DEFINED):
            added.append(AddedToken(i, text, kind_id == _GGUF_CONTROL))
        if i < size:
            token_bytes.append(None)
    return Vocabulary(token_bytes, added, f"{path.name} (GGUF metadata)")


def load_vocabulary(location: Path) -> Vocabulary:
    """The vocabulary in a model directory (tokenizer.json, vocab.json, any HF tokenizer) or a .gguf file."""
    if location.is_file() and location.suffix == ".gguf":
        return vocabulary_from_gguf(location)
    tokenizer_json = location / "tokenizer.json"
    if tokenizer_json.is_file():
        spec = read_json(tokenizer_json, "tokenizer file")
        return vocabulary_from_tokenizer_json(spec, str(tokenizer_json))
    vocab_json = location / "vocab.json"
    if vocab_json.is_file() and (location / "merges.txt").is_file():
        vocab = read_json(vocab_json, "vocabulary file")
        spec = {
            "model": {"type": "BPE", "vocab": vocab},
            "decoder": {"type": "ByteLevel"},
            "added_tokens": [],
        }
        return vocabulary_from_tokenizer_json(spec, str(vocab_json))
    # Anything else transformers can load (e.g. a sentencepiece tokenizer.model): convert it to the fast form.
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(location))
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
    except Exception as error:
        raise SmoothieError(f"no tokenizer found in {location} ({first_line(error)})") from None
    return vocabulary_from_tokenizer_json(spec, f"{location} (converted tokenizer)")
