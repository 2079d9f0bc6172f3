"""Real (slow): `smoothie smooth` on the embedded 0.5B's own GGUF writes a GGUF that gguf-py, transformers and
llama.cpp read, whose output rows are the base's × S, and that stops the base's Chinese answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smoothie_cli.cli import main
from smoothie_cli.models.embedded import embedded_gguf

pytestmark = pytest.mark.slow
NAME = "qwen2.5-coder-0.5b-instruct"
PROMPT = "Please tell me the numbers 1 to 3 in Chinese."


@pytest.fixture(scope="module")
def smoothed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = embedded_gguf(NAME)
    out = tmp_path_factory.mktemp("gguf") / "smoothed.gguf"
    with pytest.raises(SystemExit) as info:
        main(["smooth", str(base), "-o", str(out), "--json"])
    assert info.value.code in (0, None)
    return base, out


def test_the_written_gguf_reads_back_with_only_its_output_rows_scaled(smoothed) -> None:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from smoothie_cli.config import load_config
    from smoothie_cli.smoothing.scales import scales_from_analysis
    from smoothie_cli.vocab.analysis import analysis_document
    from smoothie_cli.vocab.tokens import load_vocabulary

    base, out = smoothed
    old, new = GGUFReader(base), GGUFReader(out)
    assert [t.name for t in new.tensors] == [t.name for t in old.tensors]
    for a, b in zip(old.tensors, new.tensors):
        assert a.tensor_type == b.tensor_type
        if a.name != "output.weight":
            assert np.array_equal(np.asarray(a.data), np.asarray(b.data)), a.name
    assert new.fields["smoothie.min_scale"].contents() == 0.5
    document = analysis_document(NAME, load_vocabulary(base), load_config(None), None)
    head = next(t for t in old.tensors if t.name == "output.weight")
    vector = scales_from_analysis(document, 0.5, 10.0).vector(int(head.shape[-1]))
    rows = np.flatnonzero(vector != 1.0)
    assert len(rows) > 26_000
    pick = np.concatenate([rows[:500], np.flatnonzero(vector == 1.0)[:50]])
    shape = (int(head.shape[-1]), -1)
    before = dequantize(np.asarray(head.data).reshape(shape[0], -1)[pick], head.tensor_type)
    after_tensor = next(t for t in new.tensors if t.name == "output.weight")
    after = dequantize(np.asarray(after_tensor.data).reshape(shape[0], -1)[pick], after_tensor.tensor_type)
    exact = before * vector[pick, None]
    assert np.abs(after - exact).max() <= 1e-3 * np.abs(exact).max()


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_transformers_loads_it_and_the_chinese_answer_changes(smoothed) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, out = smoothed
    answers = {}
    for name, path in (("base", base), ("smoothed", out)):
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
        messages = [{"role": "user", "content": PROMPT}]
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)  # fmt: skip
        with torch.no_grad():
            generated = model.eval().generate(**inputs, max_new_tokens=20, do_sample=False)
        answers[name] = tokenizer.decode(
            generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )
        del model
    assert _has_chinese(answers["base"]), answers
    assert answers["smoothed"].strip() and answers["smoothed"] != answers["base"]
    assert "一" not in answers["smoothed"], answers


def test_llama_cpp_loads_it_and_the_chinese_answer_changes(smoothed) -> None:
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make llama-cpp)")
    base, out = smoothed
    answers = {}
    for name, path in (("base", base), ("smoothed", out)):
        llm = llama_cpp.Llama(model_path=str(path), n_threads=2, n_ctx=512, verbose=False, seed=0)
        reply = llm.create_chat_completion(messages=[{"role": "user", "content": PROMPT}], max_tokens=20,
                                           temperature=0.0, top_k=1, repeat_penalty=1.0)  # fmt: skip
        answers[name] = reply["choices"][0]["message"]["content"]
        del llm
    print(json.dumps(answers, ensure_ascii=False))
    assert _has_chinese(answers["base"]), answers
    assert answers["smoothed"].strip() and answers["smoothed"] != answers["base"]
    assert "一" not in answers["smoothed"], answers
