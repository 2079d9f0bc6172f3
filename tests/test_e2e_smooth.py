"""Real: smoothing the embedded Qwen2.5-Coder-0.5B lowers the mass on CJK tokens and keeps it working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from smoothie_cli.cli import main
from smoothie_cli.models import model_directory, resolve_model

MODEL = "embedded:qwen2.5-coder-0.5b-instruct"
PROMPTS = [
    "Please tell me the numbers 1 to 3 in Chinese.",
    "Translate the Korean word '학교' into Chinese characters.",
]


def test_smoothed_embedded_model_suppresses_chinese(tmp_path: Path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = model_directory(resolve_model(MODEL))
    out = tmp_path / "smoothed"
    with pytest.raises(SystemExit) as info:
        main(["smooth", MODEL, "-o", str(out), "--json"])
    assert info.value.code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    assert summary["target_tokens"] == 26_153 and summary["untied"] is False and summary["verified"]

    record = json.loads((out / "smoothie.json").read_text())
    targets = torch.tensor([int(t) for t, s in record["scaled_rows"].items() if s == 0.5])
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    masses, answers = {}, {}
    for name, directory in (("base", base_dir), ("smoothed", out)):
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
        masses[name], answers[name] = [], []
        for prompt in PROMPTS:
            inputs = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            with torch.no_grad():
                probs = model(**inputs).logits[0, -1].softmax(-1)
                generated = model.generate(**inputs, max_new_tokens=20, do_sample=False)
            masses[name].append(probs[targets].sum().item())
            answers[name].append(
                tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            )
        del model
    for base_mass, smoothed_mass in zip(masses["base"], masses["smoothed"]):
        assert smoothed_mass < base_mass / 2
    assert all(answer.strip() for answer in answers["smoothed"])  # still generates
    assert "一" in answers["base"][0] and "一" not in answers["smoothed"][0]
