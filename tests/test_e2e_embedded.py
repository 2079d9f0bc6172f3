"""End to end on the real embedded Qwen2.5-Coder-0.5B: part packages → GGUF → safetensors → analyze."""

from __future__ import annotations

import json

import pytest

from smoothie_cli.cli import main
from smoothie_cli.models import model_directory, resolve_model
from smoothie_cli.models.embedded import MARKER

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def checkpoint():
    """The converted checkpoint (converted here on first use: about a minute)."""
    return model_directory(resolve_model(MODEL))


def test_analyze_embedded_model(checkpoint, capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze", MODEL, "--window-size", "4", "--json"])
    assert info.value.code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == MODEL
    assert (summary["vocab_size"], summary["target_tokens"], summary["broken_tokens"]) == (
        151_643,
        26_153,
        1_457,
    )
    assert summary["added_tokens"] == 22  # Qwen2.5's specials; the [PAD…] fillers are not tokens


def test_checkpoint_is_an_ordinary_hf_model(checkpoint, qwen_tokenizer_dir):
    from safetensors import safe_open
    from transformers import AutoTokenizer

    assert (checkpoint / MARKER).is_file()
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["vocab_size"] == 151_936
    assert config["tie_word_embeddings"] is False
    assert "quantization_config" not in config
    with safe_open(str(checkpoint / "model.safetensors"), "pt") as handle:
        keys = set(handle.keys())
        assert {"lm_head.weight", "model.embed_tokens.weight"} <= keys
        assert handle.get_slice("lm_head.weight").get_shape() == [151_936, 896]
    ours = AutoTokenizer.from_pretrained(str(checkpoint))
    reference = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))
    assert ours.vocab_size == 151_643 and len(ours) == 151_665
    for text in ["def f(x):\n    return x ** 2", "안녕하세요, 中文 and emoji 😀", "  spaces\tand\ttabs é"]:
        assert ours.encode(text) == reference.encode(text)
        assert ours.decode(ours.encode(text)) == text
    assert "<|im_start|>" in ours.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


def test_converted_model_answers(checkpoint):
    from smoothie_cli.models.loading import load_model, load_tokenizer

    source = resolve_model(MODEL)
    tokenizer = load_tokenizer(source)
    model = load_model(source, device="cpu")
    messages = [{"role": "user", "content": "What is 17 + 25? Reply with the number only."}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "42" in answer
