"""Exact n-gram analysis of broken (byte-fragment) tokens.

Question, for a broken token t and window n: if t is followed by n-1 tokens drawn uniformly from the
broken tokens, how likely is it that t's bytes end up inside a target character? smoothie-qwen samples
this by decoding random n-grams. With byte-level BPE the answer depends only on UTF-8 edge bytes:
what t leaves pending at its end (an incomplete lead sequence) and the continuation bytes each neighbour
starts with. Grouping neighbours by those edges turns the sampling into a small exact sum.

`forward` (the default) asks the question above: t opens a character that later tokens close.
`backward` is the mirror: n-1 random tokens come first and t closes a character they opened.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from smoothie_cli.vocab.scripts import TargetScript, code_point_mask

Direction = Literal["forward", "backward"]


def is_continuation(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


def sequence_length(lead: int) -> int:
    """Bytes in the UTF-8 sequence a lead byte starts (1 for ASCII and for invalid leads)."""
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 1


def pending_tail(data: bytes) -> bytes:
    """The incomplete but still valid UTF-8 prefix left at the end of `data` (b'' when none)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    decoder.decode(data, final=False)
    return decoder.getstate()[0]


# Allowed range of the byte after each lead (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
_SECOND_BYTE = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


def is_valid_prefix(data: bytes) -> bool:
    """True when `data` is a proper prefix of some valid UTF-8 sequence."""
    if not data or len(data) >= sequence_length(data[0]):
        return False
    if len(data) > 1:
        low, high = _SECOND_BYTE.get(data[0], (0x80, 0xBF))
        if not low <= data[1] <= high:
            return False
    return all(is_continuation(b) for b in data[2:])


def leading_continuations(data: bytes, limit: int = 3) -> bytes:
    n = 0
    while n < len(data) and n < limit and is_continuation(data[n]):
        n += 1
    return data[:n]


@dataclass(frozen=True)
class Edges:
    """What of a token matters at its boundaries."""

    head: bytes  # leading continuation bytes, at most 3
    all_continuation: bool  # every byte is a continuation byte
    tail: bytes  # pending incomplete sequence at its end


def edges_of(data: bytes) -> Edges:
    all_cont = bool(data) and all(is_continuation(b) for b in data)
    return Edges(leading_continuations(data), all_cont, b"" if all_cont else pending_tail(data))


def code_point_bits(pending: bytes) -> int:
    """The payload bits a valid pending prefix has fixed so far."""
    lead = pending[0]
    bits = lead & (0x1F if lead < 0xE0 else 0x0F if lead < 0xF0 else 0x07)
    for b in pending[1:]:
        bits = (bits << 6) | (b & 0x3F)
    return bits


class _Heads:
    """The distinct first-`need` continuation bytes of the pool's tokens, as arrays."""

    def __init__(self, heads: Counter[bytes], need: int) -> None:
        import numpy as np

        self.keys = sorted(heads)
        self.index = {h: i for i, h in enumerate(self.keys)}
        self.counts = np.array([heads[h] for h in self.keys], dtype=np.float64)
        self.first = np.array([h[0] for h in self.keys], dtype=np.int64)
        payload = np.zeros(len(self.keys), dtype=np.int64)
        for i, h in enumerate(self.keys):
            for b in h:
                payload[i] = (payload[i] << 6) | (b & 0x3F)
        self.payload = payload
        self.need = need


class ExactNgram:
    """p_n for every token against a pool of neighbour tokens, drawn uniformly with replacement."""

    def __init__(self, pool: Sequence[bytes], script: TargetScript) -> None:
        if not pool:
            raise ValueError("the neighbour pool is empty")
        self.script = script
        self.mask = code_point_mask(script)
        self.n = len(pool)
        edges = [edges_of(b) for b in pool]
        # heads[r]: the first r continuation bytes, over tokens that have at least r
        self.heads = {r: _Heads(Counter(e.head[:r] for e in edges if len(e.head) >= r), r) for r in (1, 2, 3)}
        # tokens made only of continuation bytes, shorter than 3: the only ones that can extend a pending char
        self.short_runs = Counter(e.head for e in edges if e.all_continuation and len(e.head) < 3)
        self.tails_of_mixed = Counter(e.tail for e in edges if not e.all_continuation)
        self.all_cont_weight = sum(1 for e in edges if e.all_continuation) / self.n
        self._forward_memo: dict[tuple[bytes, int], float] = {}

    def _need(self, pending: bytes) -> int:
        return sequence_length(pending[0]) - len(pending)

    def _closing_hits(self, pending: bytes):
        """Per distinct head of the right length: 1.0 where it completes `pending` into a target char."""
        heads = self.heads[self._need(pending)]
        code_points = (code_point_bits(pending) << (6 * heads.need)) | heads.payload
        hits = self.mask[code_points]
        if len(pending) == 1:  # the second byte of E0, ED, F0, F4 has a narrower range
            low, high = _SECOND_BYTE.get(pending[0], (0x80, 0xBF))
            hits &= (heads.first >= low) & (heads.first <= high)
        return heads, hits

    def _forward(self, pending: bytes, remaining: int) -> float:
        """P(the character `pending` opened becomes a target character within `remaining` tokens)."""
        if not pending or remaining == 0:
            return 0.0
        key = (pending, remaining)
        if key not in self._forward_memo:
            heads, hits = self._closing_hits(pending)
            p = float(heads.counts[hits].sum()) / self.n
            if remaining > 1:
                need = heads.need
                for run, count in self.short_runs.items():
                    if len(run) < need and is_valid_prefix(pending + run):
                        p += count / self.n * self._forward(pending + run, remaining - 1)
            self._forward_memo[key] = p
        return self._forward_memo[key]

    def _state_distributions(self, steps: int) -> Iterator[dict[bytes, float]]:
        """Distributions of the pending bytes after 1..`steps` random neighbours, from a fresh start."""
        dist: dict[bytes, float] = {b"": 1.0}
        for _ in range(steps):
            nxt: Counter[bytes] = Counter()
            for tail, count in self.tails_of_mixed.items():
                nxt[tail] += count / self.n
            for pending, mass in dist.items():
                extended = 0.0
                if pending:
                    need = self._need(pending)
                    for run, count in self.short_runs.items():
                        if len(run) < need and is_valid_prefix(pending + run):
                            w = mass * count / self.n
                            nxt[pending + run] += w
                            extended += w
                nxt[b""] += mass * self.all_cont_weight - extended
            dist = {k: v for k, v in nxt.items() if v > 0}
            yield dist

    def _closing_mass(self, dist: dict[bytes, float]) -> dict[bytes, float]:
        """For each head h: the probability mass of pending states that h completes into a target char."""
        import numpy as np

        totals = {r: np.zeros(len(self.heads[r].keys)) for r in (1, 2, 3)}
        for pending, weight in dist.items():
            if pending:
                heads, hits = self._closing_hits(pending)
                totals[heads.need] += weight * hits
        return {
            h: float(totals[r][i])
            for r in (1, 2, 3)
            for i, h in enumerate(self.heads[r].keys)
            if totals[r][i]
        }

    def probabilities(
        self, tokens: Sequence[bytes], windows: Sequence[int], direction: Direction = "forward"
    ) -> dict[int, list[float]]:
        """{window: [p for each token]}; a token that holds a whole target character itself scores 1."""
        own = [self.script.has_target_char(t.decode("utf-8", "replace")) for t in tokens]
        result: dict[int, list[float]] = {}
        if direction == "forward":
            tails = [pending_tail(t) for t in tokens]
            for n in windows:
                result[n] = [1.0 if own[i] else self._forward(tails[i], n - 1) for i in range(len(tokens))]
            return result
        heads = [leading_continuations(t) for t in tokens]
        for steps, dist in enumerate(self._state_distributions(max(windows) - 1), start=1):
            if steps + 1 not in windows:
                continue
            mass = self._closing_mass(dist)
            result[steps + 1] = [
                1.0 if own[i] else sum(mass.get(h[:k], 0.0) for k in range(1, len(h) + 1))
                for i, h in enumerate(heads)
            ]
        return {n: result[n] for n in windows}
