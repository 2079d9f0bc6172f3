"""The llama.cpp target (models/llama_cpp.py, generation/llama_batch.py) on the embedded 0.5B's own GGUF.

Needs llama-cpp-python (`make llama-cpp`); `make test-llama-cpp` runs this file and CI runs that target. What
must hold for speculative decoding to be exact on this engine: k tokens fed at once give the logits of the
same tokens fed one by one, a crop forgets exactly the rejected positions, and so speculation (any proposer,
right or wrong guesses) writes the engine's own greedy text; rows of a batch decode as they would alone.
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

import torch

from smoothie_cli.generation.engine import Engine
from smoothie_cli.generation.llama_batch import LlamaCppBatch, decode_all
from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.generation.speculative import Proposal, SpeculativeDecoder
from smoothie_cli.models.llama_cpp import LlamaCppModel, load_llama_cpp
from smoothie_cli.models.resolve import resolve_model

pytestmark = [pytest.mark.slow, pytest.mark.llama_cpp]
TARGET = "embedded:qwen2.5-coder-0.5b-instruct"
PROMPTS = (
    "Write a Python function that returns the squares of a list of numbers.",
    "What is a building permit?",
    "Name three colours.",
)


@pytest.fixture(scope="module")
def model() -> LlamaCppModel:
    return load_llama_cpp(resolve_model(TARGET), sequences=4, context=4096)


@pytest.fixture(scope="module")
def engine(model: LlamaCppModel) -> Engine:
    from smoothie_cli.models.loading import load_tokenizer

    return Engine(model, load_tokenizer(resolve_model(TARGET)))


def prompt(engine: Engine, text: str) -> list[int]:
    return engine.prompt_ids([{"role": "user", "content": text}])


def test_the_gguf_vocabulary_and_stop_ids_are_the_tokenizers(engine: Engine, model: LlamaCppModel) -> None:
    assert model.vocab_size >= len(engine.tokenizer)
    assert engine.tokenizer.convert_tokens_to_ids("<|im_end|>") in engine.stop_ids


def test_k_tokens_at_once_give_the_logits_of_one_at_a_time_and_crop_forgets(
    engine: Engine, model: LlamaCppModel
) -> None:
    ids = prompt(engine, PROMPTS[1])
    tail = engine.tokenizer("A building permit is a", add_special_tokens=False)["input_ids"]
    one = model.sequence()
    one.feed(ids[:-1])
    singles = torch.cat([one.feed([t]) for t in [ids[-1], *tail]])
    many = model.sequence()
    many.feed(ids[:-1])
    block = many.feed([ids[-1], *tail], keep=len(tail) + 1)
    assert block.shape == singles.shape == (len(tail) + 1, model.vocab_size)
    # llama.cpp picks other CPU kernels for several tokens than for one: the logits agree to rounding of
    # the int8 activations (well under a logit), not bit for bit
    assert (block - singles).abs().max() < 1.5
    assert agree_but_near_ties(block, singles)
    # rejected guesses are forgotten: after a crop, the same token gives the same logits as before
    many.crop(len(ids) + 1)
    again = many.feed([tail[1]])
    assert (again[0] - singles[2]).abs().max() < 1.5
    assert model.length(0) == len(ids) + 2


def agree_but_near_ties(a: torch.Tensor, b: torch.Tensor, margin: float = 1.5) -> bool:
    """Each row's argmax is the same, or `b`'s top two are within `margin` of each other there."""
    top = b.topk(2, dim=-1).values
    return bool(((a.argmax(-1) == b.argmax(-1)) | (top[:, 0] - top[:, 1] < margin)).all())


def same_or_near_tie(model: LlamaCppModel, ids: list[int], got: list[int], plain: list[int]) -> bool:
    """`got` is `plain` (one-at-a-time decoding of `ids`), or first differs where `plain` chose between two
    tokens less than 1.5 logits apart (llama.cpp's kernels round by how many tokens a call runs)."""
    split = next((i for i, (a, b) in enumerate(zip(got, plain)) if a != b), None)
    if split is None:
        return got == plain
    return plain_margins(model, ids, plain)[split] < 1.5


def plain_margins(model: LlamaCppModel, ids: list[int], answer: list[int]) -> list[float]:
    """The top-two logit margin at each step of `answer`, decoded one token at a time."""
    sequence = model.sequence()
    sequence.feed(ids[:-1])
    margins = []
    for token in [ids[-1], *answer[:-1]]:
        top = sequence.feed([token])[0].topk(2).values
        margins.append(float(top[0] - top[1]))
    return margins


class WrongThenRight:
    """A proposer whose guesses are wrong every other round (the target's own next tokens otherwise), so
    every round keeps some, rejects some, and crops."""

    forwards = 0

    def __init__(self, answer: list[int]) -> None:
        self.answer, self.rounds, self.done = answer, 0, 0

    def options(self, context):
        return {"draft": 8}

    def propose(self, context, gamma, source):
        self.rounds += 1
        guess = self.answer[self.done : self.done + gamma]
        if self.rounds % 2 == 0 and guess:
            guess = [*guess[: len(guess) // 2], (guess[len(guess) // 2] + 1) % 1000]
        return Proposal(guess, None, "draft")

    def commit(self, new_tokens):
        self.done += len(new_tokens)


def test_speculation_writes_the_engines_own_greedy_text(engine: Engine, model: LlamaCppModel) -> None:
    ids = prompt(engine, PROMPTS[0])
    pipeline = LogitsPipeline()
    plain, _ = SpeculativeDecoder(model, pipeline, engine.stop_ids).decode(ids, None, 40)
    proposer = WrongThenRight(plain)
    drafted, stats = SpeculativeDecoder(model, pipeline, engine.stop_ids, gamma=4).decode(ids, proposer, 40)
    # the same text, or a different choice only where one-at-a-time decoding itself was a near tie (the
    # kernels for several tokens round differently: see the module docstring)
    assert same_or_near_tie(model, ids, drafted, plain), (drafted, plain)
    assert stats.accepted > 10 and stats.accepted < stats.proposed  # some kept, some rejected
    assert stats.target_forwards < len(plain)


def test_a_second_answer_reuses_the_shared_prompt_prefix(engine: Engine, model: LlamaCppModel) -> None:
    ids = prompt(engine, PROMPTS[2])
    first, _ = SpeculativeDecoder(model, LogitsPipeline(), engine.stop_ids).decode(ids, None, 8)
    calls: list[int] = []
    original = model.decode_rows

    def counting(rows):
        calls.extend(len(r.tokens) for r in rows)
        return original(rows)

    model.decode_rows = counting  # type: ignore[method-assign]
    try:
        second, _ = SpeculativeDecoder(model, LogitsPipeline(), engine.stop_ids).decode(ids, None, 8)
    finally:
        del model.decode_rows
    assert second == first
    assert calls[0] == 1  # the whole prompt was held already: only its last token runs for logits


def test_batched_rows_decode_as_they_would_alone(engine: Engine, model: LlamaCppModel) -> None:
    ids = [prompt(engine, p) for p in PROMPTS]
    pipeline = LogitsPipeline()
    alone = [SpeculativeDecoder(model, pipeline, engine.stop_ids).decode(p, None, 16)[0] for p in ids]
    # 5 prompts through 3 free sequences: rows leave and others join while the batch runs
    together = decode_all(model, [*ids, ids[0], ids[2]], 16, engine.stop_ids, pipeline)
    for got, index in zip(together, [0, 1, 2, 0, 2]):
        assert same_or_near_tie(model, ids[index], got, alone[index]), (got, alone[index])
    assert model.free == [3, 2, 1] or sorted(model.free) == [1, 2, 3]  # every sequence given back


def test_the_continuous_batch_refuses_a_key_twice_and_drops_rows(
    engine: Engine, model: LlamaCppModel
) -> None:
    batch = LlamaCppBatch(model)
    ids = prompt(engine, PROMPTS[1])
    first = batch.admit([ids], ["a"])
    with pytest.raises(ValueError):
        batch.admit([ids], ["a"])
    assert set(batch.step()) == {"a"} and len(first) == 1
    batch.drop(["a"])
    assert len(batch) == 0 and batch.capacity == 3


def test_engine_answers_and_batches_on_llama_cpp(engine: Engine) -> None:
    pipeline = engine.pipeline()
    ids = prompt(engine, PROMPTS[2])
    answer, _ = engine.answer(ids, 12, pipeline=pipeline, lookup=True)
    batched = engine.answer_batch([[{"role": "user", "content": PROMPTS[2]}]], 12, pipeline=pipeline)
    assert same_or_near_tie(engine.target, ids, batched[0], answer)
    assert engine.device == "cpu" and engine.context_length == 1024


def test_one_sequence_still_decodes_a_batch_one_row_at_a_time(engine: Engine, model: LlamaCppModel) -> None:
    """`speculate` holds one sequence: its batched strategy must decode every prompt (not wait forever for
    a free row)."""
    single = load_llama_cpp(resolve_model(TARGET), sequences=1, context=2048)
    ids = [prompt(engine, p) for p in PROMPTS[1:]]
    answers = decode_all(single, ids, 6, engine.stop_ids, LogitsPipeline())
    alone = [SpeculativeDecoder(single, LogitsPipeline(), engine.stop_ids).decode(p, None, 6)[0] for p in ids]
    assert all(same_or_near_tie(single, p, a, b) for p, a, b in zip(ids, answers, alone))
    assert all(1 <= len(a) <= 6 for a in answers)
    assert single.free == [0]
