"""The exact n-gram analysis against brute-force decoding."""

from __future__ import annotations

import codecs
import random

import pytest

from smoothie_cli.unicode_blocks import CJK
from smoothie_cli.vocab.analysis import identify
from smoothie_cli.vocab.ngram import ExactNgram, edges_of, is_valid_prefix, pending_tail
from smoothie_cli.vocab.scripts import TargetScript

SCRIPT = TargetScript(CJK)


def char_spans(data: bytes) -> list[tuple[str, int, int]]:
    """Reference decoder: Python's own UTF-8 decoding with 'replace', plus each character's byte span."""
    errors: list[tuple[int, int]] = []

    def record(exc: UnicodeDecodeError) -> tuple[str, int]:
        errors.append((exc.start, exc.end))
        return "\ufffd", exc.end

    codecs.register_error("smoothie-test-spans", record)
    text = data.decode("utf-8", "smoothie-test-spans")
    spans, pos, k = [], 0, 0
    for ch in text:
        if k < len(errors) and errors[k][0] == pos and ch == "\ufffd":
            start, end = errors[k]
            k += 1
        else:
            start, end = pos, pos + len(ch.encode("utf-8"))
        spans.append((ch, start, end))
        pos = end
    assert pos == len(data)
    return spans


def opens_target(sequence: list[bytes]) -> bool:
    """Does the first token contribute bytes to a target character of the whole sequence's text?"""
    first = len(sequence[0])
    return any(SCRIPT.is_target_char(ch) for ch, start, _ in char_spans(b"".join(sequence)) if start < first)


def closes_target(sequence: list[bytes]) -> bool:
    """Does the last token contribute bytes to a target character?"""
    data = b"".join(sequence)
    last_start = len(data) - len(sequence[-1])
    return any(SCRIPT.is_target_char(ch) for ch, _, end in char_spans(data) if end > last_start)


@pytest.fixture(scope="module")
def fragments(qwen_vocab) -> list[bytes]:
    ident = identify(qwen_vocab, SCRIPT)
    return [qwen_vocab.token_bytes[i] for i in ident.fragments]


@pytest.fixture(scope="module")
def exact(fragments) -> dict[str, dict[int, list[float]]]:
    engine = ExactNgram(fragments, SCRIPT)
    return {d: engine.probabilities(fragments, [2, 3, 4], d) for d in ("forward", "backward")}


def test_p2_equals_brute_force_over_all_pairs(fragments, exact):
    n = len(fragments)
    for i, token in enumerate(fragments):
        forward = sum(opens_target([token, c]) for c in fragments) / n
        backward = sum(closes_target([c, token]) for c in fragments) / n
        assert exact["forward"][2][i] == pytest.approx(forward, abs=1e-12)
        assert exact["backward"][2][i] == pytest.approx(backward, abs=1e-12)


@pytest.mark.parametrize("window", [3, 4])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_p3_p4_agree_with_monte_carlo(fragments, exact, window, direction):
    rng = random.Random(1234 + window)
    samples = 2000
    indices = rng.sample(range(len(fragments)), 40)
    # include tokens whose probability is neither 0 nor 1, where sampling is informative
    indices += [i for i, p in enumerate(exact[direction][window]) if 0 < p < 1][:20]
    for i in indices:
        token = fragments[i]
        if direction == "forward":
            hits = sum(opens_target([token, *rng.choices(fragments, k=window - 1)]) for _ in range(samples))
        else:
            hits = sum(closes_target([*rng.choices(fragments, k=window - 1), token]) for _ in range(samples))
        estimate = hits / samples
        p = exact[direction][window][i]
        sigma = max((p * (1 - p) / samples) ** 0.5, 1e-3)
        assert abs(estimate - p) <= 4 * sigma, (token, window, direction, estimate, p)


def test_probabilities_grow_with_window(exact):
    for direction in exact:
        for p2, p3, p4 in zip(*(exact[direction][n] for n in (2, 3, 4))):
            assert p2 <= p3 + 1e-12 <= p4 + 2e-12


def test_hand_computed_pool():
    # 中 = E4 B8 AD ; 가 (not a target) = EA B0 80
    pool = [b"\xe4\xb8", b"\xad", b"\xb8", b"\xea\xb0", b"\x80x"]
    engine = ExactNgram(pool, SCRIPT)
    probs = engine.probabilities(pool, [2, 3], "forward")
    # E4 B8 needs one continuation byte: AD → 中, B8 → 丸 (U+4E38), 80x → 一 (U+4E00): 3 of 5 neighbours
    assert probs[2][0] == pytest.approx(3 / 5)
    # EA B0 + 80 = 가: not a target
    assert probs[2][3] == 0.0
    # single continuation bytes open nothing
    assert probs[2][1] == probs[2][2] == 0.0
    lone_lead = ExactNgram(pool, SCRIPT).probabilities([b"\xe4"], [2, 3], "forward")
    # nothing closes a lone E4 in one step; AD or B8 (2/5) extend it to E4 AD / E4 B8 (U+4B40.., U+4E00..,
    # both CJK), then AD, B8 or 80x (3/5) close it → 6/25
    assert lone_lead[2] == [0.0]
    assert lone_lead[3][0] == pytest.approx(6 / 25)


def test_utf8_edge_helpers():
    assert pending_tail(b"ab\xe4\xb8") == b"\xe4\xb8"
    assert pending_tail(b"\xe4\xb8\xad") == b""
    assert pending_tail(b"\xe0\x80") == b""  # overlong: not a valid prefix
    assert is_valid_prefix(b"\xf0\x90") and not is_valid_prefix(b"\xf0\x80")
    assert is_valid_prefix(b"\xed\x9f") and not is_valid_prefix(b"\xed\xa0")  # no surrogates
    edges = edges_of(b"\xb8\xadab\xe4")
    assert edges.head == b"\xb8\xad" and edges.tail == b"\xe4" and not edges.all_continuation
