"""oneDNN pre-packed Linear layers (models/cpu.py): same logits and greedy text as the dense model, applied
only where it is safe (float32 on the CPU, not a PEFT model), and speculation over a packed target still
equals its plain decoding."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2ForCausalLM

from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.generation.speculative import DraftProposer, SpeculativeDecoder
from smoothie_cli.models import resolve_model
from smoothie_cli.models.cpu import DISABLE_ENV, PrepackedLinear, can_prepack, prepack_for_cpu
from smoothie_cli.models.loading import load_model

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this build")


def _greedy(model: object, ids: list[int], n: int) -> list[int]:
    cached, out = CachedModel(model), []
    logits = cached.feed(ids)
    for _ in range(n):
        out.append(int(logits[-1].argmax()))
        logits = cached.feed(out[-1:])
    return out


@pytest.mark.parametrize("tied", [False, True])
def test_a_packed_model_gives_the_dense_models_logits_and_text(tiny_qwen, tied: bool) -> None:
    dense = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen(tied=tied))).eval()
    packed = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen(tied=tied))).eval()
    count = prepack_for_cpu(packed)
    assert count == 2 * 7 + 1  # q k v o gate up down in each of 2 layers, and the output head
    assert isinstance(packed.model.layers[0].self_attn.q_proj, PrepackedLinear)
    assert isinstance(packed.lm_head, PrepackedLinear)
    ids = torch.tensor([[9707, 11, 1879, 0, 576, 3974, 13]])
    with torch.inference_mode():
        # several rows at once and one row: both kernels' paths
        torch.testing.assert_close(packed(ids).logits, dense(ids).logits, atol=1e-4, rtol=1e-4)
        assert _greedy(packed, ids[0].tolist(), 12) == _greedy(dense, ids[0].tolist(), 12)


def test_only_float32_cpu_models_without_adapters_are_packed(tiny_qwen, monkeypatch) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    assert can_prepack(model)
    assert not can_prepack(Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval().to(torch.bfloat16))
    model.peft_config = {"default": None}  # what a PeftModel carries: its adapters read base weights
    assert not can_prepack(model)
    assert prepack_for_cpu(model) == 0
    fresh = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    monkeypatch.setenv(DISABLE_ENV, "0")
    assert prepack_for_cpu(fresh) == 0


def test_load_model_packs_only_for_inference(tiny_qwen) -> None:
    source = resolve_model(str(tiny_qwen()))
    trained = load_model(source, device="cpu", dtype="float32")
    served = load_model(source, device="cpu", dtype="float32", inference=True)
    assert not any(isinstance(m, PrepackedLinear) for m in trained.modules())
    assert sum(isinstance(m, PrepackedLinear) for m in served.modules()) == 15


def test_speculation_over_a_packed_target_equals_its_plain_decoding(tiny_qwen) -> None:
    target = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    draft = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen(tied=True))).eval()
    prepack_for_cpu(target)
    prompt = [9707, 11, 1879, 0, 576]
    pipeline = LogitsPipeline()
    decoder = SpeculativeDecoder(target, pipeline, gamma=3)
    vocab = target.config.vocab_size
    with torch.inference_mode():
        plain, _ = decoder.decode(prompt, None, 16)
        proposer = DraftProposer.over_prompt(draft, prompt, pipeline, vocab)
        guessed, stats = decoder.decode(prompt, proposer, 16)
    assert guessed == plain == _greedy(target, prompt, 16)
    assert stats.proposed > 0
