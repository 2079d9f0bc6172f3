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
import os
import warnings
from pathlib import Path
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
        # twice (+0.5 GB on the 0.5B, against the 2 GB of a float32 copy), and packing them takes seconds
        # (4.2 s for the 0.5B on a 2-core AVX2 CPU), so it is done on the first one-row forward (`prepack`),
        # never for a draft that only reads the gate. Where a PyTorch build has no fbgemm ops (they are
        # deprecated), one row takes the _int_mm path too.
        # `row_kernel=False`: every row count takes the _int_mm path, so this layer's output for a token does
        # not depend on how many tokens share its forward (fbgemm's row quantises activations otherwise,
        # 7-bit asymmetric), without the copy. (A whole model is still not bitwise batch-invariant: attention
        # over k rows rounds differently in float32, and int8 activations can turn that into a flipped step.)
        self._packed = None
        self.row_kernel = row_kernel

    @classmethod
    def empty(cls, in_features: int, out_features: int, bias: bool) -> Int8Linear:
        """A layer whose buffers a state dict fills (`load_int8`); call `prepack` once they are there."""
        layer = cls.__new__(cls)
        torch.nn.Module.__init__(layer)
        layer.in_features, layer.out_features = in_features, out_features
        layer.register_buffer("weight_int8", torch.empty(in_features, out_features, dtype=torch.int8))
        layer.register_buffer("weight_scale", torch.empty(out_features))
        layer.register_buffer("bias", torch.empty(out_features) if bias else None)
        layer._packed, layer.row_kernel = None, True
        return layer

    def prepack(self) -> None:
        """fbgemm's packed copy of the int8 weights for one-row forwards (the same integers and scales); a
        layer without the row kernel, or already packed, stays as it is. On a PyTorch without fbgemm's ops
        the layer gives up its row kernel: one row takes the _int_mm path."""
        if not self.row_kernel or self._packed is not None:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # quantised tensor creation is deprecated, still fastest here
                per_channel = torch._make_per_channel_quantized_tensor(
                    self.weight_int8.t().contiguous(), self.weight_scale.double(),
                    torch.zeros_like(self.weight_scale, dtype=torch.long), 0,
                )  # fmt: skip
                self._packed = torch.ops.quantized.linear_prepack(per_channel, self.bias)
        except (AttributeError, RuntimeError):
            self.row_kernel = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features).float()
        if rows.shape[0] == 1 and self.row_kernel:
            self.prepack()  # the first decoding step packs (a no-op after)
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


def save_int8(model: Any, path: Path) -> None:
    """Every tensor of a model whose Linear layers are `Int8Linear`s, as one safetensors file (atomic):
    what `load_int8` rebuilds without reading, merging or quantising float32 weights again."""
    from safetensors.torch import save_file

    tensors, seen = {}, {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape))
        if tensor.numel() and key in seen:  # a tied copy (embeddings and a float head): stored once
            continue
        seen[key] = name
        tensors[name] = tensor.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(temp), metadata={"scheme": SCHEME})
        temp.replace(path)  # whole or absent
    finally:
        temp.unlink(missing_ok=True)


def load_int8(config: Any, path: Path) -> Any:
    """The model of `config` with `Int8Linear` layers, its tensors mapped from `path` (`save_int8`)."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    with safe_open(str(path), "pt") as handle:
        if (handle.metadata() or {}).get("scheme") != SCHEME:
            raise ValueError(f"{path} holds another int8 scheme")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            shell = Int8Linear.empty(module.in_features, module.out_features, module.bias is not None)
            setattr(parent, child, shell.to_empty(device="cpu"))
    state = load_file(str(path))
    _, unexpected = model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    for name, module in list(model.named_modules()):
        # modules without weights whose buffers are computed, not stored (rotary frequencies): built again
        meta = any(b.is_meta for b in module.buffers(recurse=False))
        if meta and not any(True for _ in module.parameters(recurse=False)):
            parent_name, _, child = name.rpartition(".")
            setattr(
                model.get_submodule(parent_name) if parent_name else model, child, type(module)(config=config)
            )
    still_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if unexpected or still_meta:
        raise ValueError(f"{path} does not fit the model: {(unexpected or still_meta)[:3]}")
    return model.eval()  # its row kernels are packed on first use (`prepack_rows`)


def prepack_rows(model: Any) -> int:
    """Pack the one-row kernel of every `Int8Linear` of `model` that has not been packed yet (what its
    first decoding step would do): a decoder calls it before timing a draft's guesses, so the one-off
    packing is not taken for the cost of a guess. Returns how many layers were packed now."""
    pending = [m for m in model.modules() if isinstance(m, Int8Linear) and m.row_kernel and m._packed is None]
    for module in pending:
        module.prepack()
    return len(pending)
