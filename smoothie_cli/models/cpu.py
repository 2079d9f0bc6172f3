"""Faster float32 inference on a CPU: every Linear layer with its weight pre-packed for oneDNN.

PyTorch's dense CPU matmul re-packs a Linear's weight on every call with more than one input row, so on a
CPU a forward over k tokens costs far more than over one (Qwen2.5-Coder-1.5B, 2 cores: 0.29 s for 1 token,
0.53 s for 2, 0.75 s for 3, 0.49 s for 8) — that is what verifying a draft's guesses costs, and it also
slows plain decoding and prefill. Weights packed once into oneDNN's blocked layout make the same forwards
0.19 s (1 token) to 0.25 s (8 tokens), and prefill about 2× faster; greedy text is unchanged (logits within
~1e-5). `torch.utils.mkldnn.MkldnnLinear` does the same but is a deprecated TorchScript module (a warning
per layer); inductor's weight freezing does it under `torch.compile`, which recompiles as the KV cache
grows. So this is a small module over the same oneDNN op.

The output head is packed too, though Qwen ties it to the input embeddings: the packed copy costs its size
again (0.9 GB on the 1.5B, +15%), but a dense head alone keeps most of the slow 2–3-row forwards (verifying
one or two guesses: 0.27 s instead of 0.19 s). Smoothing never touches it at run time (logits processors).
Inference only: the packed layers have no gradients and no `weight` parameter, so a model that will be
trained, merged or saved is never packed.
"""

from __future__ import annotations

import os
from typing import Any

import torch

DISABLE_ENV = "SMOOTHIE_ONEDNN"  # "0": keep PyTorch's dense kernels (to compare, or on a CPU where they win)


class PrepackedLinear(torch.nn.Module):
    """`torch.nn.Linear` for inference with its weight in oneDNN's blocked layout, packed once."""

    def __init__(self, dense: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = dense.in_features, dense.out_features
        self.packed_weight = dense.weight.detach().to_mkldnn()
        self.packed_bias = dense.bias.detach().to_mkldnn() if dense.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).contiguous().to_mkldnn()
        y = torch._C._nn.mkldnn_linear(rows, self.packed_weight, self.packed_bias)
        return y.to_dense().reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN packed"


def can_prepack(model: Any) -> bool:
    """A float32 model on the CPU, not a PEFT model (its adapter layers read their base layer's weight),
    with oneDNN in this PyTorch build and not switched off."""
    if os.environ.get(DISABLE_ENV, "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    if hasattr(model, "peft_config"):
        return False
    parameter = next(model.parameters(), None)
    return parameter is not None and parameter.device.type == "cpu" and parameter.dtype == torch.float32


def prepack_for_cpu(model: Any) -> int:
    """Pack every Linear of `model` in place; returns how many were packed (0 where `can_prepack` says
    no). Subclasses of Linear (quantised or adapter layers) are left as they are."""
    if not can_prepack(model):
        return 0
    from smoothie_cli.models.pages import file_mappings, release

    mappings, kept = file_mappings(), shared_weights(model)
    packed = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(module, name, PrepackedLinear(child))
                if child.weight.data_ptr() not in kept:  # its float32 file pages: see models/pages.py
                    release(child.weight, mappings)
                packed += 1
    return packed


def shared_weights(model: Any) -> set[int]:
    """data_ptr of every parameter that is not the weight of a plain Linear (an embedding a head may be
    tied to), and of every weight two modules share: those stay in use after their Linear is replaced."""
    seen: dict[int, int] = {}
    kept = set()
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            pointer = parameter.data_ptr()
            seen[pointer] = seen.get(pointer, 0) + 1
            if type(module) is not torch.nn.Linear:
                kept.add(pointer)
    return kept | {pointer for pointer, count in seen.items() if count > 1}
