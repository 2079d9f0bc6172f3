from pathlib import Path

import pytest

from smoothie_cli.config import SmoothieConfig
from smoothie_cli.errors import SmoothieError
from smoothie_cli.unicode_blocks import CJK
from smoothie_cli.vocab.analysis import analyze_vocabulary, identify
from smoothie_cli.vocab.scripts import TargetScript
from smoothie_cli.vocab.tokens import (
    byte_level_bytes,
    load_vocabulary,
    sentencepiece_bytes,
    vocabulary_from_tokenizer_json,
)


def test_qwen_counts_match_the_seed(qwen_vocab):
    ident = identify(qwen_vocab, TargetScript(CJK))
    assert qwen_vocab.size == 151_643
    assert len(ident.target) == 26_153
    assert len(ident.broken) == 1_457
    assert len(ident.fragments) == 1_448
    assert len(ident.literal_replacement) == 9
    assert set(ident.fragments) | set(ident.literal_replacement) == set(ident.broken)
    assert sum(ident.per_block.values()) >= len(ident.target)


def test_token_bytes_are_raw_bytes(qwen_vocab):
    # Qwen's 'Ġ' stands for the space byte; '中' is three UTF-8 bytes
    assert byte_level_bytes("Ġhello") == b" hello"
    assert b"\xe4\xb8\xad" in qwen_vocab.token_bytes
    assert all(b is not None for b in qwen_vocab.token_bytes)
    assert [t.id for t in qwen_vocab.added][:3] == [151_643, 151_644, 151_645]


def test_sentencepiece_bytes():
    assert sentencepiece_bytes("▁hello") == b" hello"
    assert sentencepiece_bytes("<0xE4>") == b"\xe4"


def test_vocabulary_digest_tracks_content(qwen_vocab):
    other = vocabulary_from_tokenizer_json(
        {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}, "decoder": {"type": "ByteLevel"}}
    )
    assert qwen_vocab.digest() != other.digest()
    assert len(qwen_vocab.digest()) == 64


def test_vocab_json_and_merges_only(tmp_path: Path, qwen_tokenizer_dir: Path):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((qwen_tokenizer_dir / name).read_bytes())
    vocab = load_vocabulary(tmp_path)
    assert vocab.size == 151_643
    assert len(identify(vocab, TargetScript(CJK)).target) == 26_153


def _write_gguf(path: Path, tokens: list[str], types: list[int]) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_tensor("dummy", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_vocabulary(tmp_path: Path):
    # byte-level strings: 'ä¸Ń' is the bytes of 中, 'ä¸' a fragment of it
    tokens = ["a", "ä¸Ń", "ä¸", "<|endoftext|>", "<tool_call>", "[PAD5]"]
    types = [1, 1, 1, 3, 4, 5]
    path = tmp_path / "tiny.gguf"
    _write_gguf(path, tokens, types)
    vocab = load_vocabulary(path)
    assert vocab.size == 3
    assert vocab.token_bytes == [b"a", b"\xe4\xb8\xad", b"\xe4\xb8"]
    assert [(t.id, t.content, t.special) for t in vocab.added] == [
        (3, "<|endoftext|>", True),
        (4, "<tool_call>", False),
    ]
    ident = identify(vocab, TargetScript(CJK))
    assert ident.target == [1] and ident.fragments == [2]


def test_not_a_gguf(tmp_path: Path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(SmoothieError, match="not a readable GGUF"):
        load_vocabulary(bogus)


def test_analysis_json_is_byte_identical(qwen_vocab):
    cfg = SmoothieConfig.model_validate({"analysis": {"window_size": 4}})
    first = analyze_vocabulary("qwen", qwen_vocab, cfg).to_json()
    second = analyze_vocabulary("qwen", qwen_vocab, cfg).to_json()
    assert first == second
    assert '"seconds"' not in first


def test_analysis_rows(qwen_vocab):
    import json

    cfg = SmoothieConfig.model_validate({"analysis": {"window_size": 3}})
    analysis = analyze_vocabulary("qwen", qwen_vocab, cfg)
    doc = json.loads(analysis.to_json())
    kinds = {row["kind"] for row in doc["tokens"]}
    assert kinds == {"target", "fragment", "target+fragment", "literal_replacement"}
    fragments = [row for row in doc["tokens"] if "fragment" in row["kind"]]
    assert len(fragments) == 1_448
    for row in fragments[:50]:
        assert set(row["p"]) == {"2", "3"}
        expected = 0.5 / 0.8 * row["p"]["2"] + 0.3 / 0.8 * row["p"]["3"]
        assert row["weighted_prob"] == pytest.approx(expected)
        assert bytes.fromhex(row["bytes"]) == qwen_vocab.token_bytes[row["id"]]
    both = [row for row in doc["tokens"] if row["kind"] == "target+fragment"]
    assert both and all(row["weighted_prob"] == 1.0 for row in both)
    assert doc["counts"] == {"target": 26_153, "broken": 1_457, "fragment": 1_448, "literal_replacement": 9}
    assert doc["vocabulary"]["sha256"] == qwen_vocab.digest()
