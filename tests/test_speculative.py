"""Speculative decoding on tiny random models: exactness (greedy and sampled), the gate, cache rollback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from smoothie_cli.cautious.decoder import CautiousDecoder, PromptSettings
from smoothie_cli.cautious.gate import GatePolicy, GateReader
from smoothie_cli.cautious.prompts import SAFE_TAG, TOXIC_TAG, draft_prompt, read_tag
from smoothie_cli.errors import BadValue, SmoothieError, UnknownChoice
from smoothie_cli.generation.cache import CachedModel
from smoothie_cli.generation.engine import Decoding, Engine
from smoothie_cli.generation.logits import LogitsPipeline
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.generation.speculative import UNBOUNDED, GammaScheduler


def tiny(vocab: int, seed: int, sharpen: float = 1.0, layers: int = 2) -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpen)  # random init gives near-uniform logits: make them decisive
    return model


def noisy_copy(model: Qwen2ForCausalLM, noise: float, seed: int) -> Qwen2ForCausalLM:
    """A draft that mostly agrees with `model`: the same weights plus noise."""
    copy = Qwen2ForCausalLM(model.config).eval()
    copy.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in copy.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * noise * parameter.std())
    return copy


def greedy_reference(model: Qwen2ForCausalLM, prompt: list[int], n: int) -> list[int]:
    out = model.generate(
        torch.tensor([prompt]), max_new_tokens=n, do_sample=False, pad_token_id=0, eos_token_id=None
    )
    return out[0, len(prompt) :].tolist()


@pytest.mark.parametrize("gamma", [None, 0, 1, 3, 8])
def test_greedy_speculation_returns_exactly_the_target_tokens(gamma: int | None) -> None:
    target = tiny(300, seed=1, sharpen=30)
    draft = noisy_copy(target, noise=0.5, seed=2)
    decoder = CautiousDecoder(Engine(target, None, draft, stop_ids=set()), decoding=Decoding(gamma=gamma))
    for prompt in ([5, 17, 99, 3], [250, 1, 2, 3, 4, 5, 6], [42]):
        expected = greedy_reference(target, prompt, 40)
        tokens, stats = decoder.speculate_ids(prompt, [7, 8, *prompt], 40)
        assert tokens == expected
        assert stats.tokens == 40
        if gamma == 0:  # never drafts: the target's plain decoding, one forward per token
            assert stats.proposed == 0 == stats.draft_forwards
            assert stats.target_forwards == 40 + (len(prompt) > 1)  # the prompt, then one per token
        elif (
            gamma is not None
        ):  # (the adaptive γ may rightly stop drafting: this draft costs what the target does)
            assert 0 < stats.accepted < stats.proposed  # the noisy draft is right sometimes, not always
            assert stats.target_forwards < 40  # accepted tokens saved target forwards


def test_target_alone_runs_through_the_same_path() -> None:
    target = tiny(300, seed=1, sharpen=30)
    decoder = CautiousDecoder(Engine(target, None, stop_ids=set()))
    tokens, stats = decoder.speculate_ids([5, 17, 99], None, 25)
    assert tokens == greedy_reference(target, [5, 17, 99], 25)
    assert (stats.proposed, stats.target_forwards) == (0, 1 + 25)  # the prompt, then one per token


def test_stop_token_ends_the_answer_even_inside_an_accepted_draft() -> None:
    target = tiny(300, seed=1, sharpen=30)
    full = greedy_reference(target, [5, 17, 99], 30)
    stop = full[12]
    decoder = CautiousDecoder(Engine(target, None, target, stop_ids={stop}), decoding=Decoding(gamma=6))
    tokens, _ = decoder.speculate_ids([5, 17, 99], [5, 17, 99], 30)
    assert tokens == full[: full.index(stop) + 1]


def test_mismatched_vocabulary_sizes_draft_on_the_shared_ids() -> None:
    target = tiny(320, seed=1, sharpen=30)
    draft = tiny(300, seed=1, sharpen=30)  # same seed: same rows for the shared ids, fewer rows
    with torch.no_grad():
        draft.model.load_state_dict(
            target.model.state_dict() | {"embed_tokens.weight": target.model.embed_tokens.weight[:300]}
        )
        draft.lm_head.weight.copy_(target.lm_head.weight[:300])
    decoder = CautiousDecoder(Engine(target, None, draft, stop_ids=set()), decoding=Decoding(gamma=4))
    assert decoder.engine.shared_vocab == 300
    tokens, stats = decoder.speculate_ids([5, 17, 99], [5, 17, 99], 30)
    assert tokens == greedy_reference(target, [5, 17, 99], 30)
    assert stats.accepted > 0
    # and the other way round: a draft with more rows than the target never proposes an id the target lacks
    wide = CautiousDecoder(Engine(draft, None, target, stop_ids=set()), decoding=Decoding(gamma=4))
    tokens, _ = wide.speculate_ids([5, 17, 99], [5, 17, 99], 30)
    assert tokens == greedy_reference(draft, [5, 17, 99], 30)


def test_rollback_crops_the_caches_to_the_kept_answer() -> None:
    model = tiny(100, seed=3)
    cached = CachedModel(model)
    cached.feed([1, 2, 3, 4])
    full = cached.feed([5, 6, 7], keep=3)
    cached.crop(5)  # keep 1..5, forget 6, 7
    assert cached.length == 5 and cached.cache.get_seq_length() == 5
    again = cached.feed([6, 7], keep=2)
    assert torch.allclose(again, full[1:], atol=1e-5)
    fresh = CachedModel(model)
    assert torch.allclose(fresh.feed([1, 2, 3, 4, 5, 9])[-1], _after_crop(model), atol=1e-5)


def _after_crop(model: Qwen2ForCausalLM) -> torch.Tensor:
    cached = CachedModel(model)
    cached.feed([1, 2, 3, 4, 5, 6, 7, 8])
    cached.crop(5)
    return cached.feed([9])[-1]


def chi2_critical(df: int, z: float = 3.09) -> float:
    """The chi-square 0.999 quantile (Wilson–Hilferty; z = the normal 0.999 quantile)."""
    return df * (1 - 2 / (9 * df) + z * (2 / (9 * df)) ** 0.5) ** 3


def _joint_target_probs(target: Qwen2ForCausalLM, prompt: list[int], vocab: int) -> torch.Tensor:
    with torch.no_grad():
        first = torch.softmax(target(torch.tensor([prompt])).logits[0, -1], -1)
        joint = torch.zeros(vocab, vocab)
        for a in range(vocab):
            second = torch.softmax(target(torch.tensor([[*prompt, a]])).logits[0, -1], -1)
            joint[a] = first[a] * second
    return joint


def _chi_square(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom, cells expecting fewer than 5 draws pooled into one."""
    counts, expected = counts.flatten(), probs.flatten() * counts.sum()
    rare = expected < 5
    observed = torch.cat([counts[~rare], counts[rare].sum()[None]])
    wanted = torch.cat([expected[~rare], expected[rare].sum()[None]])
    statistic = float(((observed - wanted) ** 2 / wanted.clamp(min=1e-9)).sum())
    return statistic, int((~rare).sum())  # bins − 1


def test_sampling_matches_the_target_distribution() -> None:
    vocab, draws = 6, 1500
    target = tiny(vocab, seed=11, sharpen=60, layers=1)
    draft = tiny(vocab, seed=12, sharpen=60, layers=1)  # a different model: many rejections
    prompt = [1, 4, 2]
    joint = _joint_target_probs(target, prompt, vocab)
    assert float(joint.max()) < 0.5  # not degenerate

    def histogram(decoder: CautiousDecoder, draft_ids: list[int] | None, n: int = draws) -> torch.Tensor:
        counts = torch.zeros(vocab, vocab)
        for _ in range(n):
            tokens, _ = decoder.speculate_ids(prompt, draft_ids, 2)
            counts[tokens[0], tokens[1]] += 1
        return counts

    sampling = SamplingConfig(temperature=1.0, seed=0)
    decoder = CautiousDecoder(
        Engine(target, None, draft, stop_ids=set()), decoding=Decoding(sampling, gamma=2)
    )
    statistic, df = _chi_square(histogram(decoder, prompt), joint)
    assert df >= 6 and statistic < chi2_critical(df), (statistic, df)
    # the test has power: the draft's own samples (a third as many) are far from the target's distribution
    draft_alone = CautiousDecoder(
        Engine(draft, None, stop_ids=set()), decoding=Decoding(SamplingConfig(1.0, seed=0))
    )
    statistic, df = _chi_square(histogram(draft_alone, None, draws // 3), joint)
    assert statistic > 3 * chi2_critical(df), (statistic, df)


def test_top_p_keeps_the_smallest_nucleus() -> None:
    pipeline = LogitsPipeline(SamplingConfig(temperature=1.0, top_p=0.7))
    probs = pipeline.probabilities([[0]], torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])))
    assert torch.allclose(probs, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))


def test_scheduler_drafts_longer_when_the_draft_is_cheap_and_right() -> None:
    model = GammaScheduler(gamma=4)
    for gamma in (2, 4, 6, 3, 5):
        model.observe("draft", gamma, gamma, 0.01 * gamma, gamma + 1, 0.3 + 0.01 * (gamma + 1))
    source, long = model.choose({"draft": UNBOUNDED}, room=100)
    poor = GammaScheduler(gamma=4)
    for gamma in (2, 4, 6, 3, 5):
        poor.observe("draft", gamma, 1, 0.05 * gamma, gamma + 1, 0.3 + 0.06 * (gamma + 1))
    assert source == "draft" and long >= 8 and poor.choose({"draft": UNBOUNDED}, room=100) == ("draft", 1)


def test_scheduler_stops_probing_a_draft_as_slow_as_the_target() -> None:
    """llama.cpp's 1.5B beside an int8 0.5B on 2 cores: a guess costs 45 ms, a target token 50 ms and each
    more verified token 40 ms. No acceptance pays, so after the first measurement the draft is never probed
    again; free lookup guesses still are."""

    def scheduler(per_guess: float) -> GammaScheduler:
        model = GammaScheduler(gamma=4)
        model.observe("draft", 2, 0, per_guess * 2, 3, 0.01 + 0.04 * 3)
        for _ in range(4):
            model.observe(None, 0, 0, 0.0, 1, 0.05)
        return model

    slow = scheduler(0.045)
    assert not slow.could_pay("draft", 12)
    assert [slow.choose({"draft": UNBOUNDED}, room=100) for _ in range(200)] == [(None, 0)] * 200
    assert slow.could_pay("lookup", 12)
    cheap = scheduler(0.002)
    assert cheap.could_pay("draft", 12)
    assert any(cheap.choose({"draft": UNBOUNDED}, room=100)[1] > 0 for _ in range(64))


def test_measured_costs_are_kept_for_the_next_run_of_the_same_models(tmp_path, monkeypatch) -> None:
    """A one-shot `speculate` starts from the costs an earlier run measured for the same models on this
    machine instead of a warm-up answer; other models, or a damaged file, start from a warm-up again."""
    from smoothie_cli.generation.costs import profile_path

    monkeypatch.setenv("SMOOTHIE_HOME", str(tmp_path))
    target = tiny(300, seed=1, sharpen=30)
    draft = noisy_copy(target, noise=0.5, seed=2)
    identity = {"target": "t", "draft": "d", "device": "cpu"}

    def decoder() -> CautiousDecoder:
        engine = Engine(target, None, draft, stop_ids=set())
        engine.costs_identity = dict(identity)
        warmed: list[bool] = []
        engine.warm_up = lambda: warmed.append(True)  # type: ignore[method-assign]
        built = CautiousDecoder(engine)
        built.warmed = warmed  # type: ignore[attr-defined]
        return built

    first = decoder()
    first.warm_up(reuse_costs=True)
    assert first.warmed == [True]  # nothing kept yet: a warm-up answer measures
    first.speculate_ids([5, 17, 99, 3], [5, 17, 99, 3], 30)
    measured = first.engine.scheduler.costs()
    assert measured["widths"]["1"][0] > 0 and "draft" in measured["guess_seconds"]
    first.engine.keep_costs()

    second = decoder()
    second.warm_up(reuse_costs=True)
    assert second.warmed == [] and second.engine.scheduler.costs() == measured
    tokens, _ = second.speculate_ids([5, 17, 99, 3], [5, 17, 99, 3], 30)
    assert tokens == greedy_reference(target, [5, 17, 99, 3], 30)  # costs choose γ, never the text

    identity["draft"] = "another"
    assert not decoder().engine.restore_costs()
    identity["draft"] = "d"
    profile_path(identity).write_text('{"format": "costs-1", "fit": [1, 2]}')
    third = decoder()
    third.warm_up(reuse_costs=True)
    assert third.warmed == [True]


# ---- the gate, with the real Qwen tokenizer ------------------------------------------------------------


class ScriptedDraft(torch.nn.Module):
    """A 'draft' that writes a fixed text after the Alpaca prompt: next token = script[last token]."""

    def __init__(self, tokenizer, text: str, vocab: int) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.vocab = vocab
        ids = tokenizer(draft_prompt("x") + text, add_special_tokens=False)["input_ids"]
        start = len(tokenizer(draft_prompt("x"), add_special_tokens=False)["input_ids"])
        self.script = {ids[i - 1]: ids[i] for i in range(start, len(ids))}
        self.embed = torch.nn.Embedding(vocab, 1)
        self.head = torch.nn.Linear(1, vocab)

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids, past_key_values=None, use_cache=True, logits_to_keep=1, **_):
        logits = torch.zeros(1, logits_to_keep, self.vocab)
        for k, token in enumerate(input_ids[0, -logits_to_keep:].tolist()):
            logits[0, k, self.script.get(token, 0)] = 10.0
        return SimpleNamespace(logits=logits)


class CountingModel(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def get_output_embeddings(self):
        return self.model.get_output_embeddings()

    def forward(self, **kwargs):
        self.calls += 1
        return self.model(**kwargs)


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_tokenizer_dir):
    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


def test_toxic_gate_never_calls_the_target(qwen_tokenizer, tiny_qwen) -> None:
    target = CountingModel(Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval())
    draft = ScriptedDraft(qwen_tokenizer, f"{TOXIC_TAG}\nNo.", 151_936)
    decoder = CautiousDecoder(
        Engine(target, qwen_tokenizer, draft),
        GateReader(draft, qwen_tokenizer, policy=GatePolicy("Refused.")),
    )
    result = decoder.generate("how do I hurt someone", max_new_tokens=8)
    assert (result.gate, result.text, target.calls) == ("toxic", "Refused.", 0)
    assert result.stats.draft_forwards <= 1 + len(qwen_tokenizer(TOXIC_TAG)["input_ids"])


@pytest.mark.parametrize(("written", "gate", "on_untagged", "target_runs"), [
    (f"{SAFE_TAG}\nSure.", "safe", "continue", True),
    ("Sure, here it is.", "untagged", "continue", True),
    ("Sure, here it is.", "untagged", "refuse", False),
])  # fmt: skip
def test_safe_and_untagged_gates(qwen_tokenizer, tiny_qwen, written, gate, on_untagged, target_runs) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    target = CountingModel(model)
    draft = ScriptedDraft(qwen_tokenizer, written, 151_936)
    reader = GateReader(draft, qwen_tokenizer, policy=GatePolicy(on_untagged=on_untagged))
    decoder = CautiousDecoder(Engine(target, qwen_tokenizer, draft, stop_ids=set()), reader)
    result = decoder.generate("what is a cat", max_new_tokens=6)
    assert result.gate == gate
    assert (target.calls > 0) is target_runs
    if target_runs:  # whatever the draft proposes, the answer is the target's greedy answer
        alone = CautiousDecoder(Engine(model, qwen_tokenizer, stop_ids=set())).generate("what is a cat", 6)
        assert result.token_ids == alone.token_ids and result.gate != "none" and alone.gate == "none"


def test_read_tag() -> None:
    assert read_tag(" <Toc> go away") == "toxic"
    assert read_tag("<Safe>") == "safe"
    assert read_tag("<S") is None and read_tag("") is None
    assert read_tag("Sure") == "untagged"


@pytest.mark.parametrize(("settings", "kwargs", "kind", "message"), [
    (Decoding, {"gamma": -1}, BadValue, "must be at least 0 (0: no drafting), not -1"),
    (Decoding, {"max_gamma": 0}, BadValue, "must be at least 1, not 0"),
    (SamplingConfig, {"temperature": -1}, BadValue, "must be ≥ 0 (0: greedy), not -1"),
    (SamplingConfig, {"top_p": 0}, BadValue, "must be in (0, 1] (1: no limit), not 0"),
    (SamplingConfig, {"top_k": -1}, BadValue, "must be ≥ 0 (0: no limit), not -1"),
    (SamplingConfig, {"repetition_penalty": 0}, BadValue, "must be > 0 (1: none), not 0"),
    (PromptSettings, {"draft_context": "both"}, UnknownChoice,
     "unknown draft context 'both'; choose from chat, moderation"),
    (GatePolicy, {"on_untagged": "maybe"}, UnknownChoice,
     "unknown untagged policy 'maybe'; choose from continue, refuse"),
])  # fmt: skip
def test_bad_settings_are_one_typed_error_naming_the_setting(settings, kwargs, kind, message) -> None:
    """The core names its setting and the value, never a CLI flag: the CLI adds the flag (next test)."""
    with pytest.raises(kind) as error:
        settings(**kwargs)
    (setting,) = kwargs
    assert error.value.setting == setting and error.value.message == message
    assert str(error.value) == f"{setting}: {message}"


@pytest.mark.parametrize(("argv", "line"), [
    (["--gamma", "-1"], "--gamma: must be at least 0 (0: no drafting), not -1"),
    (["--max-gamma", "0"], "--max-gamma: must be at least 1, not 0"),
    (["--top-p", "2"], "--top-p: must be in (0, 1] (1: no limit), not 2.0"),
    (["--repetition-penalty", "0"], "--repetition-penalty: must be > 0 (1: none), not 0.0"),
    (["--draft-context", "both"],
     "--draft-context: unknown draft context 'both'; choose from chat, moderation"),
    (["--strategy", "fast"], "--strategy: unknown strategy 'fast'; choose from auto, speculative, batched"),
    (["--max-new-tokens", "0"], "--max-new-tokens: must be at least 1, not 0"),
])  # fmt: skip
def test_the_cli_names_the_flag_of_a_bad_setting(argv, line, cli) -> None:
    """Refused before any model loads (the target does not exist): one line, the flag first, exit code 2."""
    code, out, err = cli(["speculate", "hi", "--target", "/nonexistent/model", *argv])
    assert (code, out, err.strip()) == (2, "", f"error: {line}")


def test_empty_prompt_is_refused_clearly(qwen_tokenizer) -> None:
    decoder = CautiousDecoder(Engine(tiny(151_936, 1, layers=1), qwen_tokenizer))
    with pytest.raises(SmoothieError, match="prompt is empty"):
        decoder.generate("   ")
    with pytest.raises(SmoothieError, match="temperature"):
        SamplingConfig(temperature=-1)


def test_prompts_from_text_and_jsonl_files(tmp_path) -> None:
    from smoothie_cli.cli.speculate import read_prompts

    text = tmp_path / "p.txt"
    text.write_text("first prompt\n\nsecond prompt\n")
    rows = tmp_path / "p.jsonl"
    rows.write_text('{"instruction": "from jsonl"}\n"a bare string"\n')
    assert read_prompts(["arg"], text) == ["arg", "first prompt", "second prompt"]
    assert read_prompts(None, rows) == ["from jsonl", "a bare string"]
    (tmp_path / "bad.jsonl").write_text('{"answer": 1}\n')
    with pytest.raises(SmoothieError, match=r"bad.jsonl:1 has none of the fields"):
        read_prompts(None, tmp_path / "bad.jsonl")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(SmoothieError, match=r"broken\.jsonl:1 is not valid JSON"):
        read_prompts(None, tmp_path / "broken.jsonl")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))  # was a UnicodeDecodeError
    with pytest.raises(SmoothieError, match="is not UTF-8 text"):
        read_prompts(None, tmp_path / "latin1.txt")


def test_no_gate_speculates_even_when_the_draft_would_refuse(qwen_tokenizer, tiny_qwen) -> None:
    model = Qwen2ForCausalLM.from_pretrained(str(tiny_qwen())).eval()
    target = CountingModel(model)
    draft = ScriptedDraft(qwen_tokenizer, f"{TOXIC_TAG}\nNo.", 151_936)
    result = CautiousDecoder(Engine(target, qwen_tokenizer, draft, stop_ids=set())).generate("hi", 5)
    alone = CautiousDecoder(Engine(model, qwen_tokenizer, stop_ids=set())).generate("hi", 5)
    assert result.gate == "none" and target.calls > 0 and result.token_ids == alone.token_ids


def test_a_draft_with_the_targets_tokenizer_files_is_not_loaded_twice(
    tiny_qwen, tmp_path, monkeypatch
) -> None:
    """Byte-identical tokenizer files split text the same way: the draft's tokenizer is not loaded (a
    second on a CPU start). Files that differ in any way go through the vocabulary check, which still
    refuses another tokenizer."""
    import shutil

    from smoothie_cli.cautious import loading
    from smoothie_cli.models import loading as model_loading
    from smoothie_cli.models.resolve import resolve_model

    target_dir = tiny_qwen()
    tokenizer = model_loading.load_tokenizer(resolve_model(str(target_dir)))
    assert loading.same_tokenizer_files(tokenizer, resolve_model(str(tiny_qwen(tied=True))))
    other = tmp_path / "other"
    shutil.copytree(target_dir, other)
    config = other / "tokenizer_config.json"
    config.write_text(config.read_text().replace("}", ', "padding_side": "left"}', 1))
    assert not loading.same_tokenizer_files(tokenizer, resolve_model(str(other)))
    loaded: list[str] = []
    original = model_loading.load_tokenizer
    monkeypatch.setattr(
        model_loading, "load_tokenizer", lambda s, *a, **k: loaded.append(s.spec) or original(s)
    )
    loading.load_draft(str(tiny_qwen(tied=True)), tokenizer, "cpu", "float32", "none")
    assert loaded == []
    loading.load_draft(str(other), tokenizer, "cpu", "float32", "none")
    assert loaded == [str(other)]
