"""Load tokenizers and models through transformers (and peft for adapters), from any ModelSource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smoothie_cli.errors import BadValue, SmoothieError
from smoothie_cli.gguf_file import read_gguf
from smoothie_cli.jsonfile import first_line
from smoothie_cli.models.resolve import ModelSource, concrete, model_directory, tokenizer_location
from smoothie_cli.progress import Progress, no_progress

if TYPE_CHECKING:
    import torch


def resolve_device(device: str = "auto") -> str:
    """'auto' → cuda when present, else mps, else cpu; anything else is checked and passed through."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadValue(f"{device} asks for CUDA but none is available; use cpu or auto", setting="device")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """'auto' → bfloat16 on a GPU that supports it, float32 on CPU (faster there, and exact)."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    table |= {"float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise SmoothieError(f"unknown dtype '{dtype}'; use auto, float32, bfloat16 or float16")
    return table[dtype]


def load_tokenizer(
    source: ModelSource, progress: Progress = no_progress, trust_remote_code: bool = False
) -> Any:
    """The transformers tokenizer of a model; never reads its weights."""
    from transformers import AutoTokenizer

    location = tokenizer_location(concrete(source, progress), progress)
    if location.is_file():
        read_gguf(location)  # transformers' GGUF loader would hang or crash on a damaged file
    try:
        if location.is_file():
            return AutoTokenizer.from_pretrained(str(location.parent), gguf_file=location.name)
        return AutoTokenizer.from_pretrained(str(location), trust_remote_code=trust_remote_code)
    except SmoothieError:
        raise
    except Exception as error:  # tokenizers/transformers raise many types on damaged tokenizer files
        raise SmoothieError(f"cannot load the tokenizer of '{source.spec}': {first_line(error)}") from None


def load_model(
    source: ModelSource,
    device: str = "auto",
    dtype: str = "auto",
    progress: Progress = no_progress,
    trust_remote_code: bool = False,
    inference: bool = False,
) -> Any:
    """A causal LM in eval mode on `device`; a PEFT adapter is applied on top of its base. `inference`: the
    model will only run forwards (never trained, merged or saved), so on a CPU in float32 its Linear
    layers get oneDNN pre-packed weights (models/cpu.py: 1.5–2× faster forwards)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # ours shows the step; theirs would interleave with it
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    source = concrete(source, progress)
    location = model_directory(source, progress)
    if location.is_file():
        read_gguf(location)
    try:
        if location.is_file():
            model = AutoModelForCausalLM.from_pretrained(
                str(location.parent), gguf_file=location.name, dtype=torch_dtype
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(
                str(location), dtype=torch_dtype, trust_remote_code=trust_remote_code
            )
    except SmoothieError:
        raise
    except Exception as error:  # safetensors, transformers and torch raise many types on damaged files
        raise SmoothieError(f"cannot load model '{source.spec}': {first_line(error)}") from None
    if source.kind == "peft":
        import warnings

        from peft import PeftModel

        try:
            with warnings.catch_warnings():
                # peft asks transformers 5 for is_gradient_checkpointing (deprecated there): not for users
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                model = PeftModel.from_pretrained(model, source.location)
        except Exception as error:  # a damaged adapter_config.json or adapter weights
            raise SmoothieError(f"cannot load adapter '{source.spec}': {first_line(error)}") from None
    model = model.to(device).eval()
    if inference:
        from smoothie_cli.models.cpu import prepack_for_cpu

        prepack_for_cpu(model)
    return model
