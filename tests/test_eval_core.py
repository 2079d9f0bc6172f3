"""Evaluation building blocks: option log-likelihoods, the no-Chinese score, intervals, batched generation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.evaluation.scoring import loglikelihoods
from smoothie_cli.evaluation.tasks import EvalContext, get_task
from smoothie_cli.generation.batched import ModelGenerator
from smoothie_cli.stats import mean, proportion
from smoothie_cli.unicode_blocks import CJK
from smoothie_cli.vocab.scripts import TargetScript


class ConstantModel(torch.nn.Module):
    """The same next-token logits at every position: log-probabilities we can compute by hand."""

    def __init__(self, row: torch.Tensor) -> None:
        super().__init__()
        self.row = torch.nn.Parameter(row, requires_grad=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_to_keep=0):
        length = logits_to_keep or input_ids.shape[1]
        return SimpleNamespace(logits=self.row.expand(input_ids.shape[0], length, -1))


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


def test_mc_log_likelihood_hand_computed(qwen_tokenizer):
    vocab = len(qwen_tokenizer)
    b = qwen_tokenizer(" B", add_special_tokens=False)["input_ids"]
    assert len(b) == 1
    row = torch.zeros(vocab)
    row[b[0]] = 2.0  # after any token, " B" has logit 2, everything else 0
    model = ConstantModel(row)
    example = Example("q1", "Which letter?", choices=("x", "y", "z", "w"), answer=1)
    ctx = EvalContext(model, qwen_tokenizer, generator=None, script=TargetScript(CJK), batch_size=3)  # type: ignore[arg-type]
    result = get_task("mc").run(ctx, Dataset("tiny", [example]))
    log_z = math.log(vocab - 1 + math.exp(2.0))
    expected = [-log_z, 2.0 - log_z, -log_z, -log_z]
    assert result.samples[0].meta["logprobs"] == pytest.approx(expected, abs=1e-3)
    assert result.scores["acc"].value == 1.0 and result.scores["acc_norm"].value == 1.0
    wrong = Example("q2", "Which letter?", choices=("x", "y", "z", "w"), answer=2)
    assert get_task("mc").run(ctx, Dataset("tiny", [wrong])).scores["acc"].value == 0.0


def test_batched_log_likelihoods_match_one_by_one(tiny_qwen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tiny_qwen()
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    pairs = [
        ("The capital of France is", " Paris"),
        ("1 2 3 4", " 5 6 7"),
        ("hi", " there friend, how are you"),
    ]
    batched = loglikelihoods(model, tokenizer, pairs, batch_size=3)
    for (context, continuation), (total, count) in zip(pairs, batched):
        ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logprobs = model(torch.tensor([ctx + cont])).logits[0].log_softmax(-1)
        manual = sum(logprobs[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))
        assert count == len(cont)
        assert total == pytest.approx(manual, abs=1e-3)


class FixedGenerator:
    name = "fixed"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def generate(self, examples, progress=None):
        return self.answers[: len(examples)]


def test_no_chinese_predicate():
    answers = ["사과는 苹果입니다", "apple", "1. 一", "１２３ digits", "\u3000 ideographic space only"]
    examples = [Example(f"e{i}", "translate") for i in range(len(answers))]
    ctx = EvalContext(None, None, FixedGenerator(answers), TargetScript(CJK))
    result = get_task("no-chinese").run(ctx, Dataset("d", examples))
    assert [s.scores["no_chinese"] for s in result.samples] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert result.scores["no_chinese"].value == pytest.approx(0.6)


def test_intervals():
    half = proportion([1.0] * 50 + [0.0] * 50)
    assert (round(half.low, 3), round(half.high, 3)) == (0.404, 0.596)
    perfect = proportion([1.0] * 20)
    assert perfect.value == 1.0 and perfect.high == 1.0 and 0.83 < perfect.low < 0.84
    spread = mean([0.5, 0.7, 0.6, 0.8])
    assert spread.low < 0.65 < spread.high and spread.n == 4


def test_batched_generation_equals_one_at_a_time(tiny_qwen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tiny_qwen()
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    examples = [
        Example(f"e{i}", p) for i, p in enumerate(["short", "a somewhat longer prompt here", "中文 and more"])
    ]
    batched = ModelGenerator(model, tokenizer, max_new_tokens=6, batch_size=3).generate(examples)
    single = ModelGenerator(model, tokenizer, max_new_tokens=6, batch_size=1).generate(examples)
    assert batched == single
    assert all(isinstance(a, str) for a in batched)


def test_decoding_loop_matches_transformers_generate(tiny_qwen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from smoothie_cli.generation.batched import decode_batch

    directory = tiny_qwen()
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    tokenizer.padding_side = "left"
    for text in ["hello there", "请翻译: water"]:
        inputs = tokenizer([text], return_tensors="pt")
        ours = decode_batch(model, *inputs.values(), max_new_tokens=8, eos_ids=set())
        with torch.no_grad():
            reference = model.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=None)
        assert ours[0] == reference[0, inputs["input_ids"].shape[1] :].tolist()
    # a row that hits end-of-turn early leaves the batch; the other keeps going
    inputs = tokenizer(
        ["hello there", "a much longer prompt than the first"], return_tensors="pt", padding=True
    )
    free = decode_batch(model, *inputs.values(), max_new_tokens=6, eos_ids=set())
    stop = {free[0][2]}
    stopped = decode_batch(model, *inputs.values(), max_new_tokens=6, eos_ids=stop)
    assert stopped[0] == free[0][: free[0].index(free[0][2]) + 1]
    if free[1][:6].count(free[0][2]) == 0:
        assert stopped[1] == free[1]


def test_logits_cache_gives_the_same_scores_under_new_scales(tiny_qwen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from smoothie_cli.evaluation.scoring import LogitsCache
    from smoothie_cli.smoothing.runtime import TokenScaleLogitsProcessor

    directory = tiny_qwen()
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    pairs = [("Question: 1+1?\nAnswer:", f" {x}") for x in "ABCD"] + [("Pick one:", " 中")]
    scales = torch.ones(151_936)
    scales[torch.arange(1000, 151_643, 3)] = 0.4
    processor = TokenScaleLogitsProcessor(scales)
    cache = LogitsCache()
    plain = loglikelihoods(model, tokenizer, pairs, cache=cache)
    assert len(cache.rows) == 2
    cached = loglikelihoods(model, tokenizer, pairs, logits_processors=[processor], cache=cache)
    fresh = loglikelihoods(model, tokenizer, pairs, logits_processors=[processor])
    assert [c[0] for c in cached] == pytest.approx([f[0] for f in fresh], abs=1e-5)
    assert [c[0] for c in cached] != pytest.approx([p[0] for p in plain], abs=1e-5)


def test_mc_task_scores_each_context_once_across_settings(qwen_tokenizer):
    from smoothie_cli.smoothing.runtime import TokenScaleLogitsProcessor

    class Counting(ConstantModel):
        calls = 0

        def forward(self, *args, **kwargs):
            Counting.calls += 1
            return super().forward(*args, **kwargs)

    row = torch.zeros(len(qwen_tokenizer))
    model = Counting(row)
    ctx = EvalContext(model, qwen_tokenizer, generator=None, script=TargetScript(CJK), batch_size=8)  # type: ignore[arg-type]
    dataset = Dataset(
        "d", [Example(f"q{i}", f"question {i}?", choices=("a", "b"), answer=0) for i in range(5)]
    )
    get_task("mc").run(ctx, dataset)
    ctx.logits_processors = [TokenScaleLogitsProcessor(torch.full((len(qwen_tokenizer),), 0.5), mode="bias")]
    get_task("mc").run(ctx, dataset)
    assert Counting.calls == 1
