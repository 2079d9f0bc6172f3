"""The sampling settings a user gives, checked once."""

from __future__ import annotations

from dataclasses import dataclass

from smoothie_cli.errors import BadValue


@dataclass(frozen=True)
class SamplingConfig:
    """Greedy when temperature is 0; otherwise temperature, top-k and nucleus (top-p) sampling.

    `repetition_penalty` (transformers' rule: a seen token's positive logit is divided by it, a negative one
    multiplied) applies to greedy decoding too. `seed` makes sampled answers repeatable.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise BadValue(f"must be ≥ 0 (0: greedy), not {self.temperature}", setting="temperature")
        if not 0 < self.top_p <= 1:
            raise BadValue(f"must be in (0, 1] (1: no limit), not {self.top_p}", setting="top_p")
        if self.top_k < 0:
            raise BadValue(f"must be ≥ 0 (0: no limit), not {self.top_k}", setting="top_k")
        if not self.repetition_penalty > 0:
            raise BadValue(
                f"must be > 0 (1: none), not {self.repetition_penalty}", setting="repetition_penalty"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0
