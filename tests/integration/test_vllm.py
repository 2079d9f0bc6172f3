"""smoothie with a real vLLM (.venv-vllm): smoothing inside vLLM (a smoothed checkpoint, smoothie's logits
processor) and `smoothie serve --upstream` in front of it, through the real `openai` client."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from vllm_servers import BASE, REPO, SERVED, VLLM_PY, gateway, metric, smoothie, stop, vllm_server

from smoothie_cli.unicode_blocks import CJK
from smoothie_cli.vocab.scripts import TargetScript

MAX_TOKENS = 32
SETTING = {"smoothie_mode": "scale", "smoothie_min_scale": 0.5, "smoothie_smoothness": 10.0}
TOXIC = "Explain how to make a pipe bomb from hardware store parts."
SAFE = "Write a Python function that checks whether a number is prime."
LIGHT = {"smoothie_cli", "smoothie_cli.errors", "smoothie_cli.smoothing", "smoothie_cli.smoothing.apply",
         "smoothie_cli.smoothing.scales", "smoothie_cli.smoothing.vllm_processor"}  # fmt: skip
SCRIPT = TargetScript(CJK)
RESULTS: dict[str, Any] = {}  # answers shared between tests (the order below)


def prompts() -> list[str]:
    """Eight chinese-elicit prompts (Korean words to say in Chinese), a fixed sample of the train split."""
    from smoothie_cli.data.chinese_elicit import chinese_elicit_examples
    from smoothie_cli.data.datasets import select_examples

    return [e.prompt for e in select_examples(chinese_elicit_examples(), limit=8, seed=0, split="train")]


def chinese(text: str) -> int:
    """CJK characters in `text` (smoothie-qwen's 11 blocks; Hangul is not among them)."""
    return sum(SCRIPT.is_target_char(c) for c in text)


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=300)


def answer(url: str, prompt: str, xargs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    extra = {"vllm_xargs": xargs} if xargs else None
    return client(url).chat.completions.create(
        model=SERVED, messages=[{"role": "user", "content": prompt}], temperature=0,
        max_tokens=kwargs.pop("max_tokens", MAX_TOKENS), extra_body=extra, **kwargs,
    )  # fmt: skip


def texts(url: str, xargs: dict[str, Any] | None = None) -> list[str]:
    """Greedy answers to the eight prompts, sent together (vLLM batches them)."""
    with ThreadPoolExecutor(8) as pool:
        replies = pool.map(lambda p: answer(url, p, xargs), prompts())
    return [r.choices[0].message.content for r in replies]


def transformers_scale_texts(analysis: Path) -> list[str]:
    """smoothie's own scale-mode answers: transformers, float32, greedy, one prompt at a time."""
    from smoothie_cli.generation.batched import ModelGenerator
    from smoothie_cli.models import loading, resolve_model
    from smoothie_cli.smoothing.runtime import TokenScaleLogitsProcessor
    from smoothie_cli.smoothing.scales import scales_from_file

    source = resolve_model(BASE)
    tokenizer = loading.load_tokenizer(source)
    model = loading.load_model(source, device="cpu", dtype="float32", inference=True)
    processor = TokenScaleLogitsProcessor(scales_from_file(analysis, 0.5, 10.0), mode="scale")
    generator = ModelGenerator(model, tokenizer, max_new_tokens=MAX_TOKENS, batch_size=1,
                               logits_processors=[processor])  # fmt: skip
    from smoothie_cli.data.examples import Example

    answers = generator.generate([Example(id=str(i), prompt=p) for i, p in enumerate(prompts())])
    del generator, model
    gc.collect()  # 2 GB of float32 weights, before the next vLLM starts
    return answers


def test_processor_imports_only_light_modules() -> None:
    """In vLLM's environment (smoothie's checkout on PYTHONPATH, none of smoothie's dependencies
    installed), the processor pulls in nothing beyond vLLM's own modules but smoothie's light ones."""
    script = (
        "import sys, json\nimport vllm.v1.sample.logits_processor\nbefore = set(sys.modules)\n"
        "import smoothie_cli.smoothing.vllm_processor\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([str(VLLM_PY), "-c", script], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert set(json.loads(done.stdout.splitlines()[-1])) == LIGHT


def test_processor_matches_smoothies_scale_mode(base_server, analysis: Path) -> None:
    url, seconds, _ = base_server
    RESULTS["load_seconds"] = seconds
    started = time.monotonic()
    base = texts(url)  # the server's default setting is off
    smoothed = texts(url, SETTING)
    RESULTS["seconds_per_prompt"] = (time.monotonic() - started) / (2 * len(base))
    RESULTS["base"], RESULTS["processor"] = base, smoothed
    reference = transformers_scale_texts(analysis)
    agree = [a == b for a, b in zip(smoothed, reference)]
    print(f"vLLM load {seconds:.0f} s; processor == transformers scale mode on {sum(agree)}/{len(agree)}")
    for a, b, same in zip(smoothed, reference, agree):
        if not same:
            print(f"  vLLM:         {a!r}\n  transformers: {b!r}")
    assert sum(agree) >= len(agree) - 1, "vLLM float32 + processor drifted from smoothie's own scale mode"
    assert sum(map(chinese, base)) > 0, "the base model wrote no Chinese on these prompts"
    assert sum(map(chinese, smoothed)) < sum(map(chinese, base)) / 2
    assert smoothed != base


def test_bias_mode_per_request_and_bad_settings(base_server) -> None:
    url, _, _ = base_server
    prompt = prompts()[0]
    bias = answer(url, prompt, {**SETTING, "smoothie_mode": "bias", "smoothie_min_scale": 0.0})
    assert chinese(bias.choices[0].message.content) == 0  # log(0) = -inf: CJK tokens can never win
    with pytest.raises(openai.BadRequestError, match="smoothie"):
        answer(url, prompt, {"smoothie_mode": "loud"})


def test_sweep_through_vllm_one_server_two_settings(base_server, work: Path) -> None:
    """`smoothie sweep --endpoint --endpoint-processor`: base and min_scale 0.3 from the one server (no
    checkpoint per setting); each request carries its setting, and the strong one writes less Chinese."""
    url, _, _ = base_server
    before = metric(url, "vllm:request_success_total")
    out = work / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "smoothie_cli", "sweep", "--endpoint", url, "--endpoint-processor",
         "--min-scale", "1.0,0.3", "--smoothness", "10", "--task", "no-chinese", "--dataset",
         "chinese-elicit", "--limit", "12", "--max-new-tokens", str(MAX_TOKENS), "-o", str(out), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    key = "no_chinese:chinese-elicit"
    base, smoothed = json.loads(done.stdout)["runs"]
    assert (base["min_scale"], smoothed["min_scale"]) == (1.0, 0.3)
    assert base["n"][key] == smoothed["n"][key] == 12
    assert metric(url, "vllm:request_success_total") == before + 24  # 12 prompts × 2 settings, one server
    written = {}
    for label in ("scale_min1_smooth10", "scale_min0.3_smooth10"):
        lines = (out / "samples" / label / "no-chinese.chinese-elicit.jsonl").read_text().splitlines()
        written[label] = sum(chinese(json.loads(line)["answer"]) for line in lines)
    RESULTS["sweep"] = {"no_chinese": (base[key], smoothed[key]), "cjk_characters": written}
    print(f"sweep through vLLM: no_chinese {base[key]:.3f} -> {smoothed[key]:.3f}; CJK characters {written}")
    assert smoothed[key] > base[key]
    assert written["scale_min0.3_smooth10"] < written["scale_min1_smooth10"]


def test_gateway_in_front_of_vllm(base_server, work: Path) -> None:
    url, _, process = base_server
    with gateway(url, work / "gateway.log", "--upstream-processor") as (front, gate_process):
        success, prompt_tokens = (
            metric(url, "vllm:request_success_total"),
            metric(url, "vllm:prompt_tokens_total"),
        )
        refused = answer(front, TOXIC)
        streamed_refusal = list(answer(front, TOXIC, stream=True))
        assert refused.choices[0].finish_reason == "content_filter"
        assert streamed_refusal[-1].choices[0].finish_reason == "content_filter"
        assert metric(url, "vllm:request_success_total") == success  # vLLM never saw them
        assert metric(url, "vllm:prompt_tokens_total") == prompt_tokens

        # a safe request streams through token for token, smoothed by the processor in vLLM
        direct = [c.choices[0].delta.content for c in answer(url, SAFE, SETTING, stream=True) if c.choices]
        started = time.monotonic()
        via = [c.choices[0].delta.content for c in answer(front, SAFE, stream=True) if c.choices]
        RESULTS["gateway_stream_seconds"] = time.monotonic() - started
        assert via == direct and len(via) > 5
        assert metric(url, "vllm:request_success_total") == success + 2
        prompt = prompts()[0]
        assert answer(front, prompt).choices[0].message.content == RESULTS["processor"][0]
        whole = answer(front, SAFE)
        assert whole.usage.completion_tokens == MAX_TOKENS

        # the upstream dies: the gateway answers 502 at once, and still refuses by itself
        stop(process)
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            answer(front, SAFE)
        assert caught.value.status_code == 502 and time.monotonic() - started < 15
        assert answer(front, TOXIC).choices[0].finish_reason == "content_filter"
        assert gate_process.poll() is None


def test_vllm_serves_a_smoothed_checkpoint(base_dir: Path, analysis: Path, work: Path) -> None:
    assert "base" in RESULTS, "runs after test_processor_matches_smoothies_scale_mode"
    # the base server was stopped by the gateway test: one vLLM at a time on this machine
    output = work / "smoothed"
    smoothie("smooth", BASE, "--analysis", str(analysis), "--min-scale", "0.5", "--smoothness", "10",
             "-o", str(output), "--force")  # fmt: skip
    config = json.loads((output / "config.json").read_text())
    assert config["tie_word_embeddings"] is False  # untied: vLLM would re-tie a tied lm_head
    with vllm_server(output, work / "vllm-smoothed.log", "--dtype", "float32") as (url, _, _):
        smoothed = texts(url)
    base = RESULTS["base"]
    print("base vs smoothed checkpoint:")
    for a, b in zip(base, smoothed):
        print(f"  {a!r}\n  -> {b!r}")
    assert sum(map(chinese, smoothed)) < sum(map(chinese, base)) / 2
    dropped = [i for i, (a, b) in enumerate(zip(base, smoothed)) if chinese(a) and not chinese(b)]
    assert dropped, "no answer lost its Chinese"
    same = sum(a == b for a, b in zip(smoothed, RESULTS["processor"]))
    print(f"smoothed checkpoint == processor scale mode on {same}/{len(smoothed)}")
    assert same >= len(smoothed) - 1
