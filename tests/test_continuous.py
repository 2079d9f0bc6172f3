"""Continuous batching: rows that join a running batch mid-way decode as they would alone."""

from __future__ import annotations

import pytest
import torch

from smoothie_cli.generation.batched import decode_batch
from smoothie_cli.generation.continuous import ContinuousBatch
from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.models import loading, resolve_model


@pytest.fixture(scope="module")
def model_and_prompts(tiny_qwen):
    source = resolve_model(str(tiny_qwen()))
    model = loading.load_model(source, device="cpu", dtype="float32")
    tokenizer = loading.load_tokenizer(source)
    texts = ["hello there", "a much longer prompt that pads the others on the left", "cats", "why is the sky"]
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return model, prompts


def alone(model, prompt: list[int], steps: int, pipeline: LogitsPipeline | None = None) -> list[int]:
    ids = torch.tensor([prompt])
    return decode_batch(
        model, ids, torch.ones_like(ids), max_new_tokens=steps, eos_ids={-1}, pipeline=pipeline
    )[0]


def test_rows_joining_and_leaving_decode_as_alone(model_and_prompts) -> None:
    model, prompts = model_and_prompts
    lengths = {0: 12, 1: 6, 2: 9, 3: 5}  # tokens each row decodes before it leaves
    expected = {k: alone(model, prompts[k], n) for k, n in lengths.items()}
    batch = ContinuousBatch(model)
    got: dict[int, list[int]] = {}

    def record(tokens: dict) -> None:
        for key, token in tokens.items():
            got.setdefault(key, []).append(token)
        batch.drop([k for k in tokens if len(got[k]) >= lengths[k]])

    record(batch.admit([prompts[0]], [0]))
    for _ in range(3):
        record(batch.step())
    record(batch.admit([prompts[1], prompts[2]], [1, 2]))  # longer prompts than the running row's context
    for _ in range(4):
        record(batch.step())
    record(batch.admit([prompts[3]], [3]))  # joins after row 1 left (its padding columns trimmed)
    while len(batch):
        record(batch.step())
    assert got == expected


def test_a_row_joining_an_empty_batch_starts_it_afresh(model_and_prompts) -> None:
    model, prompts = model_and_prompts
    batch = ContinuousBatch(model)
    first = batch.admit([prompts[0]], ["a"])
    batch.drop(["a"])
    assert len(batch) == 0 and batch.step() == {}
    assert batch.admit([prompts[0]], ["b"]) == {"b": first["a"]}
    with pytest.raises(ValueError):
        batch.admit([prompts[1]], ["b"])


def test_sampling_rows_share_the_pipeline(model_and_prompts) -> None:
    model, prompts = model_and_prompts
    pipeline = LogitsPipeline(SamplingConfig(temperature=1.0, seed=3))
    generator = torch.Generator().manual_seed(3)
    batch = ContinuousBatch(model, pipeline, generator=generator)
    tokens = [batch.admit([prompts[2]], [0])[0]] + [batch.step()[0] for _ in range(5)]
    again = torch.Generator().manual_seed(3)
    batch2 = ContinuousBatch(model, pipeline, generator=again)
    assert tokens == [batch2.admit([prompts[2]], [0])[0]] + [batch2.step()[0] for _ in range(5)]
    assert tokens != alone(model, prompts[2], 6)  # sampled, not the greedy answer
