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

from smoothie_cli.errors import SmoothieError


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


def _is_byte_level(spec: dict) -> bool:
    """True when the tokenizer's decoder (or pre-tokenizer) is ByteLevel."""

    def has_byte_level(node: dict | None) -> bool:
        if not node:
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(
            has_byte_level(child) for key in ("decoders", "pretokenizers") for child in node.get(key, [])
        )

    return has_byte_level(spec.get("decoder")) or has_byte_level(spec.get("pre_tokenizer"))


def vocabulary_from_tokenizer_json(spec: dict, source: str = "tokenizer.json") -> Vocabulary:
    model = spec.get("model") or {}
    vocab = model.get("vocab")
    if model.get("type") == "Unigram" and isinstance(vocab, list):
        strings = [row[0] for row in vocab]
    elif isinstance(vocab, dict):
        strings_by_id: dict[int, str] = {i: s for s, i in vocab.items()}
        size = max(strings_by_id, default=-1) + 1
        strings = [strings_by_id.get(i, "") for i in range(size)]
    else:
        raise SmoothieError(f"{source}: no vocabulary found in the tokenizer's model section")
    to_bytes = byte_level_bytes if _is_byte_level(spec) else sentencepiece_bytes
    added = [
        AddedToken(int(t["id"]), str(t["content"]), bool(t.get("special", False)))
        for t in spec.get("added_tokens", [])
    ]
    added_ids = {t.id for t in added}
    token_bytes: list[bytes | None] = [None if i in added_ids else to_bytes(s) for i, s in enumerate(strings)]
    return Vocabulary(token_bytes, sorted(added, key=lambda t: t.id), source)


# GGUF token types (llama.cpp's LLAMA_TOKEN_TYPE_*)
_GGUF_NORMAL, _GGUF_CONTROL, _GGUF_USER_DEFINED, _GGUF_UNUSED, _GGUF_BYTE = 1, 3, 4, 5, 6


def vocabulary_from_gguf(path: Path) -> Vocabulary:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as error:  # gguf raises ValueError/struct errors on foreign files
        raise SmoothieError(f"{path} is not a readable GGUF file ({error})") from None
    fields = reader.fields
    if "tokenizer.ggml.tokens" not in fields:
        raise SmoothieError(f"{path} carries no tokenizer (no tokenizer.ggml.tokens)")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents() if "tokenizer.ggml.token_type" in fields else None
    kind = fields["tokenizer.ggml.model"].contents() if "tokenizer.ggml.model" in fields else "gpt2"
    to_bytes = byte_level_bytes if kind == "gpt2" else sentencepiece_bytes
    types = list(types) if types is not None else [_GGUF_NORMAL] * len(tokens)
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
        try:
            spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SmoothieError(f"cannot read {tokenizer_json}: {error}") from None
        return vocabulary_from_tokenizer_json(spec, str(tokenizer_json))
    vocab_json = location / "vocab.json"
    if vocab_json.is_file() and (location / "merges.txt").is_file():
        vocab = json.loads(vocab_json.read_text(encoding="utf-8"))
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
        raise SmoothieError(f"no tokenizer found in {location} ({error})") from None
    return vocabulary_from_tokenizer_json(spec, f"{location} (converted tokenizer)")
