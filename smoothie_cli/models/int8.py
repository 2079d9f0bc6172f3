"""int8 Linear layers for a CPU draft: int8 weights (one scale per output channel) × int8 activations with
one scale per token (W8A8, dynamic, symmetric).

Why not `torch.ao.quantization.quantize_dynamic` (what the draft used before): its activation scale is one
per *tensor* — the whole batch of tokens shares it, with 7-bit unsigned steps (fbgemm's reduce_range). A
prompt's hidden states then depend on the other prompts of its batch, their padding, and how the prefill is
split into forwards: the shipped int8 gate's probe score moved by 0.94 log-odds on average (3.9 at most)
between the same prompt read alone and read in a batch, flipping 3 of 48 decisions, and the calibration
(batched) did not read what speculation (one prompt, two forwards) reads. A scale per token makes every
token's product independent of the others: the same prompt gets the same states in any batch. It is also
the torch.ao API that is deprecated.

Why not torchao's `Int8DynamicActivationInt8WeightConfig` (the same scheme, maintained): on a CPU its
Linear runs ~5× slower than this one (0.48 ms vs 0.10 ms for one token through 896 → 4864 on 2 cores);
`torch._int_mm` is the int8 GEMM both would use, and it is as fast as fbgemm's.
"""

from __future__ import annotations

import functools
import warnings
from contextlib import suppress
from typing import Any

import torch

# what an int8 reading's calibration (gate-int8.json) was fitted on: one written for the per-tensor int8 of
# before reads other hidden states, so load_draft does not apply it to this one
SCHEME = "int8-per-token"
_CHUNK_ROWS = 8192


class Int8Linear(torch.nn.Module):
    """`torch.nn.Linear` for inference with int8 weights and per-token int8 activations."""

    def __init__(self, dense: torch.nn.Linear, row_kernel: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = dense.in_features, dense.out_features
        weight = dense.weight.detach()
        scale = torch.empty(self.out_features)  # one per output channel
        quantized = torch.empty(self.out_features, self.in_features, dtype=torch.int8)
        for start in range(0, self.out_features, _CHUNK_ROWS):  # float temporaries of a chunk, not of a
            rows = weight[start : start + _CHUNK_ROWS].float()  # whole head (3 × 0.9 GB on the 1.5B's)
            chunk = rows.abs().amax(1).clamp(min=1e-8) / 127
            scale[start : start + _CHUNK_ROWS] = chunk
            quantized[start : start + _CHUNK_ROWS] = torch.round(rows / chunk[:, None]).to(torch.int8)
        self.register_buffer("weight_int8", quantized.t().contiguous())  # [in, out]: _int_mm's layout
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", dense.bias.detach().float() if dense.bias is not None else None)
        # one row (a decoding step) goes through fbgemm's packed kernel, ~2× faster than _int_mm for one row
        # (45 vs 96 µs for 896 → 4864); its one activation scale *is* that token's. Costs the int8 weights
        # twice (+0.5 GB on the 0.5B, against the 2 GB of a float32 copy). Where a PyTorch build has no
        # fbgemm ops (they are deprecated), one row takes the _int_mm path too.
        # `row_kernel=False`: every row count takes the _int_mm path, so this layer's output for a token does
        # not depend on how many tokens share its forward (fbgemm's row quantises activations otherwise,
        # 7-bit asymmetric), without the copy. (A whole model is still not bitwise batch-invariant: attention
        # over k rows rounds differently in float32, and int8 activations can turn that into a flipped step.)
        self._packed = None
        with warnings.catch_warnings(), suppress(AttributeError, RuntimeError):
            if not row_kernel:
                raise RuntimeError("one kernel for every row count")
            warnings.simplefilter("ignore")  # quantised tensor creation is deprecated, still fastest here
            per_channel = torch.quantize_per_channel(
                weight.float(), scale.double(), torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8
            )
            self._packed = torch.ops.quantized.linear_prepack(per_channel, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        if rows.shape[0] == 1 and self._packed is not None:
            y = torch.ops.quantized.linear_dynamic(rows, self._packed, reduce_range=True)
            return y.reshape(*shape[:-1], self.out_features).to(x.dtype)
        scale = rows.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127  # one per token
        quantized = (rows / scale).round_().to(torch.int8)
        if int8_gemm_is_fast():
            y = torch._int_mm(quantized, self.weight_int8).float()
        else:
            # the same integer products summed in float32: exact while a dot product stays under 2^24
            # (127² × 896 does; 4864-wide rows could in theory exceed it and round at the 8th digit)
            y = torch.mm(quantized.float(), self.weight_int8.float())
        y.mul_(self.weight_scale).mul_(scale)
        if self.bias is not None:
            y.add_(self.bias)
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-token"


@functools.cache
def int8_gemm_is_fast() -> bool:
    """Whether this CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX) for `_int_mm`.
    Without them (AVX2 only) `_int_mm` runs a slow generic kernel — 234 ms for 64 × 896 → 4864 on a 2-core
    AVX2 EPYC, against 8.6 ms for the same integer products in float32 with the weights converted per call
    — so multi-row forwards (prefills, gate reads) take the float32 path there."""
    checks = ("_is_vnni_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: True)()) for name in checks)


def quantize_linears(
    model: Any, keep: set[str] | frozenset[str] = frozenset(), row_kernel: bool = True
) -> Any:
    """Replace every `torch.nn.Linear` of `model` (except those named in `keep` or under them) by an
    `Int8Linear` (`row_kernel`: see there), in place. Returns `model`."""
    from smoothie_cli.models.cpu import shared_weights
    from smoothie_cli.models.pages import file_mappings, release

    mappings, shared = file_mappings(), shared_weights(model)
    for name, module in list(model.named_modules()):
        kept = any(name == k or name.startswith(k + ".") for k in keep)
        if kept or not isinstance(module, torch.nn.Linear):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear(module, row_kernel))
        if type(module) is torch.nn.Linear and module.weight.data_ptr() not in shared:
            release(module.weight, mappings)  # its float32 file pages: see models/pages.py
    return model
