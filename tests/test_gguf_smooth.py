"""smoothing/gguf_output.py on small GGUF files written here: each supported type's rows come out scaled by S
within float16 rounding (dequantised by gguf-py), unscaled rows and every other tensor byte for byte, a tied
GGUF gets a separate output.weight, the metadata is copied with the smoothing record added, and the output
is whole or absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize

from smoothie_cli.errors import CannotWrite, SmoothieError
from smoothie_cli.smoothing.gguf_output import _BLOCK_FACTORS, scale_rows_in_type, smooth_gguf
from smoothie_cli.smoothing.scales import TokenScales

ROWS, WIDTH = 12, 512  # two K-quant super-blocks per row
QUANTISABLE = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "F32", "BF16")


def _rows(type_name: str, seed: int = 0) -> np.ndarray:
    """[ROWS, bytes per row] of a `type_name` tensor with realistic values."""
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((ROWS, WIDTH)) * 0.05).astype(np.float32)
    kind = GGMLQuantizationType[type_name]
    if type_name in QUANTISABLE:
        return quantize(values, kind).view(np.uint8).reshape(ROWS, -1)
    # K-quants: gguf-py cannot quantise them; random quants with sane float16 factors
    _, block = GGML_QUANT_SIZES[kind]
    raw = rng.integers(0, 256, size=(ROWS, WIDTH // 256, block), dtype=np.uint8)
    for offset in _BLOCK_FACTORS[type_name]:
        factors = rng.uniform(1e-4, 1e-2, size=(ROWS, WIDTH // 256)).astype(np.float16)
        raw[:, :, offset : offset + 2] = factors[..., None].view(np.uint8)
    return raw.reshape(ROWS, -1)


@pytest.mark.parametrize("type_name", [*QUANTISABLE, "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
def test_each_type_scales_its_rows_in_place_of_its_block_factors(type_name: str) -> None:
    rows = _rows(type_name)
    row_scales = np.ones(ROWS, dtype=np.float32)
    row_scales[[1, 4, 7]] = [0.5, 0.8, 0.137]
    kind = GGMLQuantizationType[type_name]
    scaled = scale_rows_in_type(rows, type_name, row_scales)
    assert scaled.shape == rows.shape and scaled.dtype == np.uint8
    untouched = row_scales == 1.0
    assert np.array_equal(scaled[untouched], rows[untouched])  # byte for byte
    before, after = dequantize(rows, kind).reshape(ROWS, -1), dequantize(scaled, kind).reshape(ROWS, -1)
    exact = before * row_scales[:, None]
    span = np.abs(exact).max(1, keepdims=True)
    tolerance = 1e-2 if type_name == "BF16" else 2e-3  # bfloat16 values: 8 bits; float16 factors: 11
    assert (np.abs(after - exact) / span).max() < tolerance
    assert not np.allclose(after[1], before[1])  # it did change


def _write_gguf(path: Path, *, tied: bool, output_type: str = "Q8_0") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    writer = GGUFWriter(path, "qwen2")
    writer.add_block_count(1)
    writer.add_string("general.name", "tiny")
    writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(ROWS)])
    tensors = {
        "token_embd.weight": _rows("Q5_0", 1),
        "blk.0.attn_norm.weight": rng.standard_normal(WIDTH).astype(np.float32),
    }
    if not tied:
        tensors["output.weight"] = _rows(output_type, 2)
    for name, data in tensors.items():
        if data.dtype == np.uint8:
            kind = (
                GGMLQuantizationType.Q5_0
                if name == "token_embd.weight"
                else GGMLQuantizationType[output_type]
            )
            writer.add_tensor(name, data, raw_dtype=kind)
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


def _scales() -> TokenScales:
    return TokenScales({2: 0.5, 5: 0.5, 9: 0.75}, 0.5, 10.0, 2, 1, "a" * 64, "b" * 64)


@pytest.mark.parametrize("output_type", ["Q8_0", "Q6_K", "F16"])
def test_a_smoothed_gguf_changes_only_the_output_rows(tmp_path: Path, output_type: str) -> None:
    source, out = tmp_path / "m.gguf", tmp_path / "out" / "s.gguf"
    _write_gguf(source, tied=False, output_type=output_type)
    before = source.read_bytes()
    result = smooth_gguf(source, out, _scales(), metadata={"min_scale": 0.5, "base_model": "tiny"})
    assert source.read_bytes() == before  # the input is never modified
    assert result.rows_scaled == 3 and result.output_type == output_type and not result.added_output
    old, new = GGUFReader(source), GGUFReader(out)
    assert [t.name for t in new.tensors] == [t.name for t in old.tensors]
    for a, b in zip(old.tensors, new.tensors):
        assert a.tensor_type == b.tensor_type and list(a.shape) == list(b.shape)
        if a.name != "output.weight":
            assert np.array_equal(np.asarray(a.data).view(np.uint8), np.asarray(b.data).view(np.uint8))
    kind = GGMLQuantizationType[output_type]
    old_out = dequantize(np.asarray(old.tensors[-1].data), kind).reshape(ROWS, -1)
    new_out = dequantize(np.asarray(new.tensors[-1].data), kind).reshape(ROWS, -1)
    np.testing.assert_allclose(new_out[[2, 5]], old_out[[2, 5]] * 0.5, atol=2e-3 * np.abs(old_out).max())
    np.testing.assert_array_equal(new_out[[0, 1, 3]], old_out[[0, 1, 3]])
    assert new.fields["general.name"].contents() == "tiny"
    assert new.fields["tokenizer.ggml.tokens"].contents() == [f"t{i}" for i in range(ROWS)]
    assert new.fields["smoothie.min_scale"].contents() == 0.5
    assert new.fields["smoothie.base_model"].contents() == "tiny"
    assert [p.name for p in out.parent.iterdir()] == ["s.gguf"]  # no temp file left


def test_a_tied_gguf_gets_a_separate_output_and_keeps_its_embedding(tmp_path: Path) -> None:
    source, out = tmp_path / "tied.gguf", tmp_path / "s.gguf"
    tensors = _write_gguf(source, tied=True)
    result = smooth_gguf(source, out, _scales())
    assert (
        result.added_output and result.source_tensor == "token_embd.weight" and result.output_type == "Q5_0"
    )
    new = {t.name: t for t in GGUFReader(out).tensors}
    assert set(new) == {"token_embd.weight", "output.weight", "blk.0.attn_norm.weight"}
    embedding = np.asarray(new["token_embd.weight"].data).view(np.uint8)
    assert np.array_equal(embedding, tensors["token_embd.weight"])
    kind = GGMLQuantizationType.Q5_0
    head = dequantize(np.asarray(new["output.weight"].data), kind).reshape(ROWS, -1)
    base = dequantize(tensors["token_embd.weight"], kind).reshape(ROWS, -1)
    np.testing.assert_allclose(head[9], base[9] * 0.75, atol=2e-3 * np.abs(base).max())
    np.testing.assert_array_equal(head[0], base[0])


def test_existing_outputs_and_wrong_names_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "m.gguf"
    _write_gguf(source, tied=False)
    (tmp_path / "taken.gguf").write_bytes(b"keep me")
    with pytest.raises(CannotWrite, match="already exists; give this to replace it") as error:
        smooth_gguf(source, tmp_path / "taken.gguf", _scales())
    assert error.value.setting == "force"
    assert (tmp_path / "taken.gguf").read_bytes() == b"keep me"
    with pytest.raises(SmoothieError, match=r"must end in \.gguf"):
        smooth_gguf(source, tmp_path / "out", _scales())
    with pytest.raises(SmoothieError, match="is the input file"):
        smooth_gguf(source, source, _scales(), force=True)
    smooth_gguf(source, tmp_path / "taken.gguf", _scales(), force=True)
    assert GGUFReader(tmp_path / "taken.gguf").tensors
