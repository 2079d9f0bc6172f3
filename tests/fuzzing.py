"""Seeds and mutations for the hostile-input fuzz suite (tests/test_fuzz.py).

Seeds are real small files of every format smoothie reads, written by the libraries that write them in
the wild (safetensors, transformers' save_pretrained, tokenizers, gguf.GGUFWriter, peft) or by smoothie
itself (analysis.json, gate.json, runs.jsonl). Mutations: truncation, bit flips, huge lengths, inserted
and deleted bytes, and for JSON/YAML documents wrong types, missing keys, extra keys, duplicate keys and
huge numbers; for safetensors, duplicate tensor names and overlapping offsets on top.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

COUNTS: Counter[str] = Counter()  # inputs tried per format (printed at the end by conftest)
REJECTED: Counter[str] = Counter()  # of which answered with a SmoothieError (CLI: exit 2)
HUGE = [2**63 - 1, 2**64 - 1, 2**32, 2**40 + 7, 10**12, 0xFFFFFFFF, 2**62]
CJK_TEXT = ["中", "国", "你好", "的", "是", "人", "我", "大", "日本", "한국어"]


# ---- seeds ---------------------------------------------------------------------------------------------


def small_tokenizer_spec(qwen_dir: Path, keep: int = 600) -> dict[str, Any]:
    """Qwen's tokenizer.json cut to its first `keep` ids plus a few CJK tokens (with the merges that build
    them): a real byte-level BPE tokenizer small enough to parse in a millisecond."""
    from tokenizers import Tokenizer

    spec = json.loads((qwen_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in spec["model"]["merges"]]
    producer = {a + b: (a, b) for a, b in merges}
    full = Tokenizer.from_file(str(qwen_dir / "tokenizer.json"))
    needed = {s for s, i in vocab.items() if i < keep}
    stack = [full.id_to_token(i) for text in CJK_TEXT for i in full.encode(text).ids]
    while stack:
        token = stack.pop()
        if token in needed or token not in vocab:
            continue
        needed.add(token)
        stack.extend(producer.get(token, ()))
    ordered = sorted(needed, key=lambda s: vocab[s])
    spec["model"]["vocab"] = {s: i for i, s in enumerate(ordered)}
    spec["model"]["merges"] = [[a, b] for a, b in merges if a in needed and b in needed and a + b in needed]
    added = spec["added_tokens"][:3]
    for offset, token in enumerate(added):
        token["id"] = len(ordered) + offset
    spec["added_tokens"] = added
    return spec


def write_tokenizer_dir(target: Path, spec: dict[str, Any]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}
    (target / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return target


def write_tiny_model(target: Path, spec: dict[str, Any], *, tied: bool, shard_kb: int | None) -> Path:
    """A tiny random Qwen2 checkpoint over the small tokenizer, saved by transformers."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    rows = len(spec["model"]["vocab"]) + len(spec["added_tokens"])
    config = Qwen2Config(vocab_size=rows, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied,
                         max_position_embeddings=64)  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    shard = f"{shard_kb}KB" if shard_kb else "10GB"
    model.save_pretrained(str(target), max_shard_size=shard)
    write_tokenizer_dir(target, spec)
    return target


def write_safetensors_seed(path: Path) -> Path:
    """Several dtypes and shapes, metadata, written by the safetensors library."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(1)
    tensors = {
        "lm_head.weight": torch.randn(12, 4).to(torch.bfloat16),
        "model.embed_tokens.weight": torch.randn(12, 4),
        "model.norm.weight": torch.ones(4, dtype=torch.float16),
        "positions": torch.arange(5, dtype=torch.int64),
        "scalar": torch.tensor(3.0),
        "empty": torch.zeros(0, 3),
    }
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


def write_gguf_seed(path: Path, tokens: list[str]) -> Path:
    import numpy as np
    from gguf import GGUFWriter, TokenType

    writer = GGUFWriter(str(path), "qwen2")
    writer.add_name("fuzz-seed")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    types = [TokenType.NORMAL] * (len(tokens) - 2) + [TokenType.CONTROL, TokenType.CONTROL]
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ Ġ", "i n"])
    writer.add_uint32("qwen2.context_length", 64)
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float32).reshape(8, 4))
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def copy_tree(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


# ---- byte mutations ------------------------------------------------------------------------------------

BYTE_OPS = ["truncate", "flip", "overwrite", "insert", "delete", "huge_u64", "huge_u32", "duplicate", "zero"]


def mutate_bytes(data: st.DataObject, blob: bytes, targets: list[int] | None = None) -> bytes:
    """One damage of a file's bytes; `targets` are offsets of length fields worth hitting with huge values."""
    op = data.draw(st.sampled_from(BYTE_OPS), label="byte op")
    n = len(blob)
    if n == 0:
        return data.draw(st.binary(max_size=16))
    position = data.draw(st.integers(0, n - 1), label="position")
    if op == "truncate":
        return blob[:position]
    if op == "flip":
        out = bytearray(blob)
        for p in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8), label="flips"):
            out[p] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(out)
    if op == "overwrite":
        junk = data.draw(st.binary(min_size=1, max_size=16))
        return blob[:position] + junk + blob[position + len(junk) :]
    if op == "insert":
        return blob[:position] + data.draw(st.binary(min_size=1, max_size=32)) + blob[position:]
    if op == "delete":
        length = data.draw(st.integers(1, max(1, min(64, n - position))))
        return blob[:position] + blob[position + length :]
    if op in ("huge_u64", "huge_u32"):
        if targets and data.draw(st.booleans(), label="targeted"):
            position = data.draw(st.sampled_from(targets))
        value = data.draw(st.sampled_from(HUGE))
        packed = struct.pack("<Q", value) if op == "huge_u64" else struct.pack("<I", value & 0xFFFFFFFF)
        return blob[:position] + packed + blob[position + len(packed) :]
    if op == "duplicate":
        length = data.draw(st.integers(1, max(1, min(256, n - position))))
        return blob[: position + length] + blob[position : position + length] + blob[position + length :]
    length = data.draw(st.integers(1, max(1, min(64, n - position))))
    return blob[:position] + bytes(length) + blob[position + length :]


# ---- document (JSON/YAML tree) mutations ---------------------------------------------------------------

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([*HUGE, -1, 0, 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["F32", "BF16", "Q4_K", "", "../x.safetensors", "model.safetensors", "\x00", "[/x]"]),
)
VALUES = st.one_of(
    LEAVES,
    st.lists(LEAVES, max_size=3),
    st.dictionaries(st.text(max_size=6), LEAVES, max_size=3),
)


def _paths(value: Any, limit: int = 4000) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [()]
    queue: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while queue and len(found) < limit:
        path, node = queue.pop(0)
        children = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        )
        for key, child in children:
            found.append((*path, key))
            queue.append(((*path, key), child))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


DOC_OPS = ["delete", "replace", "add_key", "wrap", "empty", "duplicate_key", "swap_type", "deep"]


def mutate_document(data: st.DataObject, document: Any) -> tuple[Any, tuple[Any, ...] | None]:
    """One structural damage of a JSON-like tree; returns (tree, path of a dict whose first key is to be
    written twice, or None)."""
    value = copy.deepcopy(document)
    paths = _paths(value)
    path = data.draw(st.sampled_from(paths), label="path")
    op = data.draw(st.sampled_from(DOC_OPS), label="doc op")
    if op == "duplicate_key":
        dict_paths = [p for p in paths if isinstance(_get(value, p), dict) and _get(value, p)]
        if dict_paths:
            return value, data.draw(st.sampled_from(dict_paths), label="dup path")
        op = "replace"
    if op == "deep":
        op, replacement = "set", Deep(data.draw(st.integers(50, 100_000), label="depth"))
    elif op == "add_key":
        target = _get(value, path)
        if isinstance(target, dict):
            target[data.draw(st.text(max_size=10), label="new key")] = data.draw(VALUES)
            return value, None
        op, replacement = "set", data.draw(VALUES)
    elif op == "wrap":
        op, replacement = "set", [_get(value, path)]
    elif op == "empty":
        current = _get(value, path)
        op, replacement = "set", type(current)() if isinstance(current, (dict, list, str)) else None
    elif op == "swap_type":
        current = _get(value, path)
        swaps = {str: 7, int: "7", float: "0.5", bool: "true", list: {}, dict: []}
        op, replacement = "set", swaps.get(type(current), "x")
    else:
        replacement = data.draw(VALUES)
    if not path:
        return (replacement if op != "delete" else {}), None
    parent, key = _get(value, path[:-1]), path[-1]
    if op == "delete":
        del parent[key]
    else:
        parent[key] = replacement
    return value, None


@dataclass(frozen=True)
class Deep:
    """A list nested `depth` times, written as text (json and yaml would recurse writing it)."""

    depth: int

    def text(self) -> str:
        return "[" * self.depth + "0" + "]" * self.depth


def dumps(value: Any, duplicate_at: tuple[Any, ...] | None = None, path: tuple[Any, ...] = ()) -> str:
    """JSON text (NaN/Infinity allowed, as Python writes them); the dict at `duplicate_at` gets its first
    key written a second time with its last value."""
    if isinstance(value, dict):
        items = [f"{json.dumps(k)}:{dumps(v, duplicate_at, (*path, k))}" for k, v in value.items()]
        if path == duplicate_at and items:
            first_key = json.dumps(next(iter(value)))
            items.append(f"{first_key}:{dumps(list(value.values())[-1])}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, Deep):
        return value.text()
    if isinstance(value, list):
        return "[" + ",".join(dumps(v, duplicate_at, (*path, i)) for i, v in enumerate(value)) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value)


def mutate_json_text(data: st.DataObject, text: str) -> bytes:
    """A JSON file damaged either as a tree (most draws) or as bytes."""
    if data.draw(st.integers(0, 3), label="tree or bytes") == 0:
        return mutate_bytes(data, text.encode("utf-8"))
    tree, duplicate_at = mutate_document(data, json.loads(text))
    return dumps(tree, duplicate_at).encode("utf-8")


def mutate_yaml_text(data: st.DataObject, text: str) -> bytes:
    import yaml

    if data.draw(st.integers(0, 2), label="tree or bytes") == 0:
        return mutate_bytes(data, text.encode("utf-8"))
    tree, _ = mutate_document(data, yaml.safe_load(text))
    try:
        return yaml.safe_dump(tree, allow_unicode=True).encode("utf-8")
    except yaml.YAMLError:  # a Deep list, or NaN keys: write JSON, which is YAML too
        return dumps(tree).encode("utf-8")


def mutate_jsonl_text(data: st.DataObject, text: str) -> bytes:
    """A JSON-lines file: one line damaged as a document, a cut last line, or byte damage."""
    lines = text.splitlines()
    choice = data.draw(st.integers(0, 3), label="jsonl op")
    if choice == 0 or not lines:
        return mutate_bytes(data, text.encode("utf-8"))
    if choice == 1:  # a kill mid-write: the last line is cut short, no newline after it
        cut = data.draw(st.integers(0, max(0, len(lines[-1]) - 1)))
        return ("\n".join(lines[:-1]) + "\n" + lines[-1][:cut]).encode("utf-8")
    index = data.draw(st.integers(0, len(lines) - 1), label="line")
    lines[index] = mutate_json_text(data, lines[index]).decode("utf-8", "replace").replace("\n", " ")
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---- safetensors ---------------------------------------------------------------------------------------


def split_safetensors(blob: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


def mutate_safetensors(data: st.DataObject, blob: bytes) -> bytes:
    """Damage the bytes, or the header as a document (then repacked, its length right or wrong), with
    duplicate tensor names and overlapping offsets among the header damages."""
    choice = data.draw(st.integers(0, 4), label="safetensors op")
    if choice == 0:
        return mutate_bytes(data, blob, targets=[0])
    header, body = split_safetensors(blob)
    duplicate_at = None
    names = [k for k in header if k != "__metadata__"]
    if choice == 1 and len(names) > 1:  # two tensors on the same bytes, or ranges that overlap
        a, b = data.draw(st.permutations(names), label="pair")[:2]
        if data.draw(st.booleans()):
            header[a]["data_offsets"] = list(header[b]["data_offsets"])
        else:
            start, end = header[b]["data_offsets"]
            header[a]["data_offsets"] = [max(0, start - 1), max(0, start - 1) + (end - start)]
    elif choice == 2:  # a tensor name written twice
        duplicate_at = ()
        first = names[0]
        header = {first: header[first], **{k: v for k, v in header.items() if k != first}}
    else:
        header, duplicate_at = mutate_document(data, header)
    text = dumps(header, duplicate_at).encode("utf-8") if isinstance(header, dict) else b"[]"
    length = len(text)
    if data.draw(st.integers(0, 5), label="wrong length") == 0:
        length = data.draw(st.sampled_from([*HUGE, length + 1, max(0, length - 1), 0]))
    if data.draw(st.integers(0, 5), label="cut body") == 0:
        body = body[: data.draw(st.integers(0, len(body)))]
    return struct.pack("<Q", length) + text + body


# ---- GGUF ----------------------------------------------------------------------------------------------


def gguf_length_offsets(blob: bytes) -> list[int]:
    """Offsets of the header counts and of every string length / array count after a known key."""
    offsets = [8, 16]  # tensor count, key/value count
    for key in (b"tokenizer.ggml.tokens", b"tokenizer.ggml.token_type", b"tokenizer.ggml.merges",
                b"general.name", b"token_embd.weight"):  # fmt: skip
        at = blob.find(key)
        if at >= 8:
            offsets += [at - 8, at + len(key) + 8, at + len(key) + 4]
    return [o for o in offsets if 0 <= o <= len(blob) - 8]
