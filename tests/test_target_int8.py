"""--target-quant int8: the target's Linear layers become per-token int8 (one kernel for every row count), so
speculation over it gives exactly its own plain greedy text, its logits stay close to float32's, and a bad
setting is one clear error."""

from __future__ import annotations

import pytest
import torch
from test_cpu_prepack import _greedy

from smoothie_cli.cautious.loading import load_for_speculation
from smoothie_cli.errors import Conflict, UnknownChoice
from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.generation.speculative import DraftProposer, SpeculativeDecoder
from smoothie_cli.models.int8 import Int8Linear

PROMPT = [9707, 11, 1879, 0, 576, 3974, 13]


def test_an_int8_target_is_quantised_layer_by_layer_and_close_to_float32(tiny_qwen) -> None:
    directory = str(tiny_qwen())
    exact, _, _, info = load_for_speculation(directory, None, device="cpu")
    quantised, _, _, info8 = load_for_speculation(directory, None, device="cpu", target_quant="int8")
    assert info["target_quant"] == "none" and info8["target_quant"] == "int8"
    layers = [m for m in quantised.modules() if isinstance(m, Int8Linear)]
    assert len(layers) == 2 * 7 + 1  # every Linear, the output head included
    assert all(layer._packed is None for layer in layers)  # one kernel for any number of rows
    assert not any(type(m) is torch.nn.Linear for m in quantised.modules())
    ids = torch.tensor([PROMPT])
    with torch.inference_mode():
        a, b = exact(ids).logits[0], quantised(ids).logits[0]
    assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() > 0.99


def test_speculation_over_an_int8_target_equals_its_plain_decoding(tiny_qwen) -> None:
    target, _, _, _ = load_for_speculation(str(tiny_qwen()), None, device="cpu", target_quant="int8")
    draft, _, _, _ = load_for_speculation(str(tiny_qwen(tied=True)), None, device="cpu", target_quant="int8")
    pipeline = LogitsPipeline()
    decoder = SpeculativeDecoder(target, pipeline, gamma=3)
    with torch.inference_mode():
        plain, _ = decoder.decode(PROMPT, None, 16)
        proposer = DraftProposer.over_prompt(draft, PROMPT, pipeline, target.config.vocab_size)
        guessed, stats = decoder.decode(PROMPT, proposer, 16)
    assert guessed == plain == _greedy(target, PROMPT, 16)
    assert stats.proposed > 0


def test_a_bad_target_quant_is_one_clear_error(tiny_qwen) -> None:
    with pytest.raises(UnknownChoice) as error:
        load_for_speculation(str(tiny_qwen()), None, device="cpu", target_quant="int4")
    assert error.value.setting == "target_quant" and error.value.choices == ["none", "int8"]
    assert error.value.message == "unknown target quantisation 'int4'; choose from none, int8"


def test_an_int8_target_on_a_gpu_is_refused_before_loading(tiny_qwen, monkeypatch) -> None:
    from smoothie_cli.models import loading

    monkeypatch.setattr(loading, "resolve_device", lambda device: "cuda")
    with pytest.raises(Conflict) as error:
        load_for_speculation(str(tiny_qwen()), None, device="cuda", target_quant="int8")
    assert error.value.setting == "target_quant"
    assert error.value.message == "int8 runs on the CPU only; on cuda use none"


def test_speculate_takes_target_quant(tiny_qwen, cli) -> None:
    code, out, err = cli(["speculate", "--target", str(tiny_qwen()), "--draft", "none", "--target-quant",
                          "int8", "--max-new-tokens", "3", "--json", "hello"])  # fmt: skip
    assert code == 0, err
    assert '"target_quant": "int8"' in out
    code, _, err = cli(["speculate", "--target", str(tiny_qwen()), "--draft", "none",
                        "--target-quant", "int4", "hello"])  # fmt: skip
    assert code == 2 and err.strip() == (
        "error: --target-quant: unknown target quantisation 'int4'; choose from none, int8"
    )


@pytest.mark.parametrize("row_kernel", [False, True])
def test_an_int8_targets_logits_do_not_depend_on_how_many_tokens_share_a_forward(
    tiny_qwen, row_kernel
) -> None:
    from smoothie_cli.models.int8 import quantize_linears
    from smoothie_cli.models.loading import load_model
    from smoothie_cli.models.resolve import resolve_model

    model = quantize_linears(load_model(resolve_model(str(tiny_qwen())), device="cpu", dtype="float32"),
                             row_kernel=row_kernel).eval()  # fmt: skip
    with torch.inference_mode():
        together = CachedModel(model)
        together.feed(PROMPT[:4])
        at_once = together.feed(PROMPT[4:], keep=3)
        alone = CachedModel(model)
        alone.feed(PROMPT[:4])
        one_by_one = torch.stack([alone.feed([t])[-1] for t in PROMPT[4:]])
    gap = float((at_once - one_by_one).abs().max())
    if row_kernel:  # the draft's layers: fbgemm's one-row kernel quantises activations its own way
        assert gap > 1e-3
    else:  # the target's: the same int8 products whatever the row count
        assert gap < 1e-4


def test_a_peft_draft_merged_layer_by_layer_equals_merging_all_first(tiny_qwen) -> None:
    import copy

    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM

    from smoothie_cli.cautious.loading import quantize_draft
    from smoothie_cli.models.int8 import quantize_linears

    torch.manual_seed(1)
    base = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config).eval()
    reference = quantize_linears(copy.deepcopy(peft_model).merge_and_unload()).eval()
    quantised, mode = quantize_draft(peft_model, "int8", "cpu")
    from peft.tuners.tuners_utils import BaseTunerLayer

    assert mode == "int8" and not any(isinstance(m, BaseTunerLayer) for m in quantised.modules())
    assert sum(isinstance(m, Int8Linear) for m in quantised.modules()) == 2 * 7 + 1
    ids = torch.tensor([PROMPT])
    with torch.inference_mode():
        torch.testing.assert_close(quantised(ids).logits, reference(ids).logits, atol=1e-5, rtol=1e-5)
