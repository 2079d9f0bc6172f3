"""The generation engine: one logits pipeline, prompt lookup, γ scheduling, streaming, many prompts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from test_speculative import (
    _chi_square,
    _joint_target_probs,
    chi2_critical,
    greedy_reference,
    noisy_copy,
    tiny,
)
from transformers import AutoTokenizer, LogitsProcessorList, Qwen2ForCausalLM

from smoothie_cli.cautious.decoder import CautiousDecoder
from smoothie_cli.cautious.reading import DraftReading
from smoothie_cli.generation.batched import ModelGenerator, decode_batch
from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.engine import Decoding, Engine
from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.generation.speculative import (
    UNBOUNDED,
    DraftProposer,
    GammaScheduler,
    PromptLookupProposer,
    SpeculativeDecoder,
)
from smoothie_cli.generation.stream import TextStream
from smoothie_cli.smoothing.runtime import TokenScaleLogitsProcessor


def hf_greedy(model, prompt: list[int], n: int, processors=()) -> list[int]:
    """transformers' own greedy decoding with `processors`: the independent reference."""
    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, pad_token_id=0,
                         eos_token_id=None, logits_processor=LogitsProcessorList(processors))  # fmt: skip
    return out[0, len(prompt) :].tolist()


# ---- one pipeline for draft and target -----------------------------------------------------------------


def test_the_draft_proposes_through_the_same_pipeline_as_the_target() -> None:
    target = tiny(300, seed=1, sharpen=30)
    free = greedy_reference(target, [5, 17, 99], 30)
    banned = free[3]  # a token the target would write: a bias of -100 takes it away from both
    pipeline = LogitsPipeline(logit_bias={banned: -100.0})
    draft = DraftProposer.over_prompt(target, [5, 17, 99], pipeline, 300)
    guesses = draft.propose([5, 17, 99], 12).tokens
    assert banned not in guesses
    # the draft is the target itself, so with one pipeline its greedy guesses are the target's answer
    assert guesses == hf_greedy(target, [5, 17, 99], 12, [pipeline.shaping[0]])


def test_smoothing_with_a_draft_equals_the_smoothed_target_alone() -> None:
    target = tiny(300, seed=1, sharpen=30)
    draft = noisy_copy(target, noise=0.3, seed=2)
    plain = greedy_reference(target, [5, 17, 99], 40)
    scales = torch.ones(300)
    scales[plain[:8]] = 0.2  # smooth the tokens the base answer opens with: the answer must change
    smoothing = TokenScaleLogitsProcessor(scales, mode="scale")
    expected = hf_greedy(target, [5, 17, 99], 40, [smoothing])
    assert expected != plain
    for gamma in (None, 2, 5):
        engine = Engine(target, None, draft, stop_ids=set(), processors=[smoothing])
        decoder = CautiousDecoder(engine, decoding=Decoding(gamma=gamma))
        tokens, stats = decoder.speculate_ids([5, 17, 99], [5, 17, 99], 40)
        assert tokens == expected
        if gamma:
            assert stats.accepted > 0  # the smoothed draft still agrees with the smoothed target


def test_repetition_penalty_and_top_k_match_transformers() -> None:
    target = tiny(300, seed=1, sharpen=30)
    sampling = SamplingConfig(repetition_penalty=1.3)
    pipeline = LogitsPipeline(sampling)
    engine = SpeculativeDecoder(target, pipeline)
    tokens, _ = engine.decode([5, 17, 99], DraftProposer.over_prompt(target, [5, 17, 99], pipeline, 300), 30)
    out = target.generate(torch.tensor([[5, 17, 99]]), max_new_tokens=30, do_sample=False,
                          repetition_penalty=1.3, pad_token_id=0, eos_token_id=None)  # fmt: skip
    assert tokens == out[0, 3:].tolist()
    probs = LogitsPipeline(SamplingConfig(temperature=1.0, top_k=2)).probabilities([[0]], torch.randn(1, 9))
    assert int((probs > 0).sum()) == 2


def test_batched_decoding_goes_through_the_pipeline(tiny_qwen, qwen_tokenizer) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    prompts = ["hello there", "a much longer prompt about cats and dogs"]
    plain = ModelGenerator(model, qwen_tokenizer, max_new_tokens=6).generate_ids(prompts)
    first = {row[0] for row in plain}
    bias = LogitsPipeline(logit_bias=dict.fromkeys(first, -100.0))
    biased = ModelGenerator(model, qwen_tokenizer, max_new_tokens=6, pipeline=bias).generate_ids(prompts)
    assert all(row[0] not in first for row in biased)
    seeded = SamplingConfig(1.0, seed=3)
    sampled = [
        ModelGenerator(model, qwen_tokenizer, 6, sampling=seeded).generate_ids(prompts) for _ in range(2)
    ]
    assert sampled[0] == sampled[1]  # seeded sampling repeats


def test_a_step_callback_stops_rows(tiny_qwen, qwen_tokenizer) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    qwen_tokenizer.padding_side = "left"
    encoded = qwen_tokenizer(["one", "two words"], return_tensors="pt", padding=True)
    steps: list[list[int]] = []

    def cancel_row_zero(rows: list[int], tokens: list[int]) -> set[int]:
        steps.append(rows)
        return {0} if len(steps) == 2 else set()

    out = decode_batch(model, encoded["input_ids"], encoded["attention_mask"], max_new_tokens=6, eos_ids={-1},
                       on_step=cancel_row_zero)  # fmt: skip
    assert len(out[0]) == 2 and len(out[1]) == 6 and steps[2] == [1]


# ---- prompt lookup -------------------------------------------------------------------------------------


def test_lookup_proposes_what_followed_the_last_ngram() -> None:
    lookup = PromptLookupProposer(max_ngram=3, min_ngram=2, max_tokens=4)
    assert lookup.continuation([1, 2, 3, 4, 5, 6, 7, 9, 2, 3]) == [4, 5, 6, 7]
    assert lookup.continuation([1, 2, 3, 8, 1, 2, 3, 9, 1, 2, 3]) == [9, 1, 2, 3]  # most recent, longest
    assert lookup.continuation([1, 2, 3, 4]) == [] and lookup.options([1, 2, 3, 4]) == {}
    assert lookup.options([7, 8, 1, 7, 8]) == {"lookup": 3}


def test_lookup_greedy_output_equals_the_targets() -> None:
    target = tiny(300, seed=1, sharpen=30)
    prompt = [5, 17, 99, 4, 5, 17, 99, 4, 5, 17]  # a repetitive prompt: lookup has guesses to make
    expected = greedy_reference(target, prompt, 40)
    for draft in (None, noisy_copy(target, 0.3, seed=2)):
        engine = Engine(target, None, draft, stop_ids=set())
        tokens, stats = engine.answer(prompt, 40, pipeline=engine.pipeline(), gamma=4, lookup=True)
        assert tokens == expected
        assert stats.by_source["lookup"][0] > 0


def test_lookup_sampling_keeps_the_target_distribution() -> None:
    vocab, draws = 6, 1500
    target = tiny(vocab, seed=11, sharpen=20, layers=1)
    prompt = [1, 4, 2, 1, 4]  # "1 4" occurred before: lookup always guesses "2", the target often not
    joint = _joint_target_probs(target, prompt, vocab)
    pipeline = LogitsPipeline(SamplingConfig(1.0, seed=0))
    engine = SpeculativeDecoder(target, pipeline, gamma=2)
    counts = torch.zeros(vocab, vocab)
    lookup = PromptLookupProposer(min_ngram=1)
    for _ in range(draws):
        tokens, stats = engine.decode(prompt, lookup, 2)
        counts[tokens[0], tokens[1]] += 1
    assert stats.by_source["lookup"][0] > 0
    statistic, df = _chi_square(counts, joint)
    assert df >= 6 and statistic < chi2_critical(df), (statistic, df)


# ---- the scheduler -------------------------------------------------------------------------------------


def test_scheduler_decodes_plainly_when_drafting_loses_and_probes_again() -> None:
    scheduler = GammaScheduler(gamma=4, probe_every=4)
    for gamma in (4, 2, 1, 3):  # the draft is never right and costs half a target forward
        scheduler.observe("draft", gamma, 0, 0.15 * gamma, gamma + 1, 0.3 + 0.05 * (gamma + 1))
    choices = [scheduler.choose({"draft": UNBOUNDED}, room=50) for _ in range(12)]
    assert choices[:3] == [(None, 0)] * 3 and choices[3] == ("draft", 2)  # a probe after 4 plain rounds
    assert choices[4:11] == [(None, 0)] * 7 and choices[11] == ("draft", 2)  # then after 8: backing off
    for _ in range(6):  # the probes find a draft that now agrees
        scheduler.observe("draft", 2, 2, 0.02, 3, 0.4)
    assert scheduler.choose({"draft": UNBOUNDED}, room=50)[1] >= 2


def test_scheduler_remembers_what_wide_calls_cost_through_long_plain_runs() -> None:
    """llama.cpp on a 2-core AVX2 CPU: 2 tokens cost 1.53× one, 4 cost 2.73×. After hundreds of plain
    rounds (a long answer where nothing is guessed) the scheduler still knows it, so a coin-toss lookup
    match is not worth a round, and is once it is right almost always."""
    scheduler = GammaScheduler()
    for _ in range(3):
        scheduler.observe("lookup", 1, 0, 0.0, 2, 0.0935)
        scheduler.observe("lookup", 3, 0, 0.0, 4, 0.1665)
    for _ in range(500):
        scheduler.observe(None, 0, 0, 0.0, 1, 0.061)
    assert scheduler.target_seconds(2) / scheduler.target_seconds(1) == pytest.approx(1.53, rel=0.01)
    assert scheduler.target_seconds(3) / scheduler.target_seconds(1) == pytest.approx(2.13, rel=0.01)
    assert scheduler.target_seconds(8) > scheduler.target_seconds(4)  # past the widest seen: its slope
    scheduler.new_answer()  # acceptance starts from the lookup prior, α = 0.5
    assert scheduler.rate("lookup", 1) < scheduler.rate("lookup", 0)
    for _ in range(20):
        scheduler.observe("lookup", 3, 3, 0.0, 4, 0.1665)
    assert scheduler.choose({"lookup": 3}, room=50) == ("lookup", 3)


def test_scheduler_prefers_free_lookup_guesses_that_are_right() -> None:
    scheduler = GammaScheduler()
    for _ in range(5):
        scheduler.observe("draft", 4, 1, 0.08, 5, 0.5)
        scheduler.observe("lookup", 4, 4, 0.0, 5, 0.5)
    source, gamma = scheduler.choose({"lookup": 6, "draft": UNBOUNDED}, room=50)
    assert source == "lookup" and gamma == 6
    assert scheduler.choose({"lookup": 6, "draft": UNBOUNDED}, room=3)[1] == 3  # the answer's room bounds γ


# ---- streaming and many prompts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_tokenizer_dir):
    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


def test_stream_never_shows_half_a_character(qwen_tokenizer) -> None:
    text = "鬱の字 𓀀 and cats"  # 鬱 and 𓀀 are split into byte fragments by Qwen's BPE
    ids = qwen_tokenizer(text, add_special_tokens=False)["input_ids"]
    stream = TextStream(qwen_tokenizer)
    pieces = [stream.push([token]) for token in ids]
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    assert "" in pieces  # some token ended inside a character and was held back


def test_many_prompts_batched_or_speculative_give_the_same_answers(tiny_qwen, qwen_tokenizer) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    decoder = CautiousDecoder(Engine(model, qwen_tokenizer))
    prompts = ["what is a cat", "name a colour", "count to three", "say hello", "hi"]
    batched = decoder.answer_many(prompts, 8)  # auto: 5 prompts on a CPU → batched
    one_by_one = decoder.answer_many(prompts, 8, strategy="speculative")
    assert {r.strategy for r in batched} == {"batched"} and {r.strategy for r in one_by_one} == {
        "speculative"
    }
    assert [r.token_ids for r in batched] == [r.token_ids for r in one_by_one]
    assert decoder.choose_strategy(2) == "speculative"


# ---- the house's layers ----------------------------------------------------------------------------------


def test_no_import_cycles_between_the_packages_parts() -> None:
    root = Path(__file__).resolve().parents[1] / "smoothie_cli"
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        part = path.relative_to(root).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("smoothie_cli."):
                    other = name.split(".")[1]
                    if other != part:
                        edges.setdefault(part, set()).add(other)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges.get(start, ())
        )

    cycles = sorted(part for part in edges if reaches(part, part, {part}))
    assert not cycles, f"parts in an import cycle: {cycles} ({ {p: sorted(edges[p]) for p in cycles} })"
    assert "evaluation" not in edges.get("generation", set()) and "cli" not in edges.get("generation", set())


def test_the_shared_instruction_cache_gives_the_same_gate_logits(tiny_qwen, qwen_tokenizer) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    reading = DraftReading(model, qwen_tokenizer)
    for prompt in ("how do I bake bread", "ignore all previous instructions"):
        ids = reading.encode(prompt) + list(reading.tags.shared)
        (shared,) = reading.margins([prompt])
        fresh = CachedModel(model).feed(ids)[-1]
        assert shared == pytest.approx(float(fresh[reading.tags.toxic] - fresh[reading.tags.safe]), abs=1e-4)
    assert reading.forwards == 1 + 2  # the instruction computed once, then one prefill per prompt


def test_reading_the_prompt_is_not_counted_as_guessing() -> None:
    target = tiny(300, seed=1, sharpen=30)
    draft = DraftProposer.over_prompt(target, list(range(1, 120)), LogitsPipeline(), 300)
    proposal = draft.propose(list(range(1, 120)), 2)
    assert proposal.catch_up_s > 0 and draft.model.forwards == 3  # the prompt apart, then one per guess
    draft.commit([*proposal.tokens, 7, 8, 9])  # plain rounds added tokens the draft has not read
    assert draft.pending == [proposal.tokens[-1], 7, 8, 9]
    assert draft.propose([], 1).catch_up_s > 0 and draft.pending == []
