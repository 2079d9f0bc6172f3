"""int8 Linear layers with per-token activation scales: a token's output does not depend on its batch."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from smoothie_cli.models.int8 import Int8Linear, quantize_linears


def _dense(fan_in: int = 64, fan_out: int = 48, bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(fan_in, fan_out, bias=bias)


@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_is_close_to_float32(bias: bool) -> None:
    dense = _dense(bias=bias)
    int8 = Int8Linear(dense)
    x = torch.randn(2, 5, 64)
    with torch.inference_mode():
        exact, approx = dense(x), int8(x)
    assert approx.shape == exact.shape and approx.dtype == exact.dtype
    assert (approx - exact).norm() / exact.norm() < 0.02
    one = int8(x[:1, :1])  # one row: fbgemm's kernel, the same weights and a scale of its own
    assert (one - exact[:1, :1]).norm() / exact[:1, :1].norm() < 0.03


def test_a_token_gets_the_same_output_in_any_batch() -> None:
    """The reason for per-token scales: an outlier token (Qwen's first-token activations are ~100× the
    others) must not coarsen the other tokens' steps, as one scale per tensor did."""
    int8 = Int8Linear(_dense())
    tokens = torch.randn(4, 64)
    outlier = 300 * torch.randn(1, 64)
    with torch.inference_mode():
        plain = int8(tokens)
        beside_outlier = int8(torch.cat([outlier, tokens]))[1:]
        reordered = int8(tokens.flip(0)).flip(0)
    assert torch.equal(plain, beside_outlier) and torch.equal(plain, reordered)
    int8._packed, int8.row_kernel = None, False  # a PyTorch without fbgemm's ops: the per-token path
    with torch.inference_mode():
        assert torch.equal(int8(tokens[:1]), plain[:1])


def test_per_token_scales_beat_the_per_tensor_dynamic_quantisation_beside_an_outlier() -> None:
    dense = _dense()
    tokens = torch.cat([300 * torch.randn(1, 64), torch.randn(7, 64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        per_tensor = quantize_dynamic(
            torch.nn.Sequential(copy.deepcopy(dense)), {torch.nn.Linear: per_channel_dynamic_qconfig}
        )
    with torch.inference_mode():
        exact = dense(tokens)[1:]
        ours = Int8Linear(dense)(tokens)[1:]
        theirs = per_tensor(tokens)[1:]
    assert (ours - exact).norm() < 0.2 * (theirs - exact).norm()


def test_quantize_linears_keeps_what_it_is_told_to() -> None:
    inner = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2))
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), inner)
    quantize_linears(model, keep={"2.1"})
    assert isinstance(model[0], Int8Linear) and isinstance(model[2][0], Int8Linear)
    assert type(model[2][1]) is torch.nn.Linear and type(model[1]) is torch.nn.ReLU
    assert model(torch.randn(3, 8)).shape == (3, 2)


def test_a_saved_int8_model_loads_back_with_the_same_outputs(tiny_qwen, tmp_path) -> None:
    """The int8 draft cache: tensors written once, a model rebuilt without float32 weights, the same
    logits for several rows (the integer path) and for one row (fbgemm's packed copy, rebuilt)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from smoothie_cli.models.int8 import load_int8, save_int8

    directory = tiny_qwen(tied=True)
    model = quantize_linears(AutoModelForCausalLM.from_pretrained(str(directory)).float()).eval()
    path = tmp_path / "draft.safetensors"
    save_int8(model, path)
    again = load_int8(AutoConfig.from_pretrained(str(directory)), path)
    ids = torch.tensor([[9707, 11, 1879, 0, 374]])
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, again(ids).logits)
        assert torch.equal(model(ids[:, :1]).logits, again(ids[:, :1]).logits)
    assert all(not t.is_meta for t in again.state_dict().values())
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically


def test_row_kernels_are_packed_on_first_use_and_give_the_same_steps(tiny_qwen) -> None:
    """Packing fbgemm's one-row copy takes seconds on a real draft: it waits for the first decoding step
    (a draft that only reads the gate never packs), and `prepare` does it before a step is timed."""
    from smoothie_cli.generation.cache import CachedModel
    from smoothie_cli.models.int8 import prepack_rows
    from smoothie_cli.models.loading import load_model
    from smoothie_cli.models.resolve import resolve_model

    def fresh() -> torch.nn.Module:
        dense = load_model(resolve_model(str(tiny_qwen())), device="cpu", dtype="float32")
        return quantize_linears(dense).eval()

    lazy, prepared = fresh(), fresh()
    layers = [m for m in lazy.modules() if isinstance(m, Int8Linear)]
    assert layers and all(layer._packed is None for layer in layers)
    prompt = [5, 17, 99, 3, 42]
    with torch.inference_mode():
        steps = CachedModel(lazy)
        steps.feed(prompt)  # many rows (only the head reads one, the last position's): no packing needed
        assert all(layer._packed is None for layer in layers if layer is not lazy.lm_head)
        lazy_step = steps.feed([7])  # the first step packs
        ready = CachedModel(prepared)
        assert ready.prepare() >= 0 and prepack_rows(prepared) == 0  # all packed at once, then nothing left
        ready.feed(prompt)
        prepared_step = ready.feed([7])
    packed = [layer._packed is not None for layer in layers]
    if torch.backends.quantized.engine in ("fbgemm", "x86"):
        assert all(packed)
    assert torch.equal(lazy_step, prepared_step)
