"""The run configuration: smoothie-qwen's config.yaml, read unchanged, validated with pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smoothie_cli.errors import SmoothieError
from smoothie_cli.unicode_blocks import CJK, MAX_CODE_POINT, UnicodeBlock

DEFAULT_MODEL = "embedded:qwen2.5-coder-0.5b-instruct"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_code_point(value: Any) -> int:
    """An int, or a string like '0x4E00', '4E00' or 'U+4E00'."""
    if isinstance(value, bool):
        raise ValueError("a code point must be a number, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("U+").removeprefix("0X")
        try:
            return int(text, 16)
        except ValueError:
            raise ValueError(f"{value!r} is not a hexadecimal code point") from None
    raise ValueError(f"{value!r} is not a code point")


class ModelSection(_Strict):
    name: str | None = Field(default=DEFAULT_MODEL, description="Model to analyse or modify")
    output_path: str = "./modified_model"
    dtype: str = "bfloat16"


class AnalysisSection(_Strict):
    method: Literal["ngram"] = "ngram"
    window_size: Annotated[int, Field(ge=2, le=4)] = 2
    # Kept so smoothie-qwen configs load unchanged; the exact analysis does not sample.
    sample_size: Annotated[int, Field(ge=1)] = 1000
    ngram_weights: list[float] = Field(default_factory=lambda: [0.5, 0.3, 0.2])
    direction: Literal["forward", "backward"] = "forward"

    @field_validator("ngram_weights")
    @classmethod
    def _weights_valid(cls, weights: list[float]) -> list[float]:
        if not 1 <= len(weights) <= 3:
            raise ValueError("give 1 to 3 weights, for windows 2, 3 and 4")
        if any(w < 0 for w in weights):
            raise ValueError("weights must not be negative")
        return weights

    @model_validator(mode="after")
    def _weights_cover_window(self) -> AnalysisSection:
        if sum(self.used_weights()) <= 0:
            raise ValueError(
                f"the n-gram weights for windows 2..{self.window_size} are all zero; "
                "give at least one a positive weight"
            )
        return self

    def used_weights(self) -> list[float]:
        """Weights for windows 2..window_size (missing ones count as 0), not yet normalised."""
        weights = list(self.ngram_weights) + [0.0] * 3
        return weights[: self.window_size - 1]

    def normalised_weights(self) -> dict[int, float]:
        used = self.used_weights()
        total = sum(used)
        return {n: w / total for n, w in zip(range(2, self.window_size + 1), used)}


class AdjustmentSection(_Strict):
    min_scale: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    smoothness: Annotated[float, Field(gt=1.0)] = 10.0


class UnicodeTarget(_Strict):
    name: str = "custom range"
    range: tuple[int, int]

    @field_validator("range", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> tuple[int, int]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError("a range is [start, end]")
        start, end = (parse_code_point(v) for v in value)
        if start < 0 or end > MAX_CODE_POINT:
            raise ValueError(f"range {start:#X}-{end:#X} goes past U+10FFFF")
        if start > end:
            raise ValueError(f"range start {start:#X} is after its end {end:#X}")
        return start, end

    def block(self) -> UnicodeBlock:
        return UnicodeBlock(self.name, *self.range)


def _default_targets() -> list[UnicodeTarget]:
    return [UnicodeTarget(name=b.name, range=(b.start, b.end)) for b in CJK]


class SmoothieConfig(_Strict):
    model: ModelSection = Field(default_factory=ModelSection)
    analysis: AnalysisSection = Field(default_factory=AnalysisSection)
    adjustment: AdjustmentSection = Field(default_factory=AdjustmentSection)
    unicode_targets: list[UnicodeTarget] = Field(default_factory=_default_targets, min_length=1)

    def blocks(self) -> list[UnicodeBlock]:
        return [t.block() for t in self.unicode_targets]


def _one_line(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "top level"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against configs/default.yaml)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {where}: {message}{more}"


def validate_config(data: Any, source: str = "config") -> SmoothieConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SmoothieError(f"{source}: expected a mapping with model/analysis/adjustment/unicode_targets")
    try:
        return SmoothieConfig.model_validate(data)
    except ValidationError as error:
        raise SmoothieError(_one_line(error, source)) from None


def load_config(path: Path | None) -> SmoothieConfig:
    """Read a smoothie-qwen config.yaml (or ours); no path gives the defaults."""
    if path is None:
        return SmoothieConfig()
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SmoothieError(f"cannot read config {path}: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SmoothieError(f"config {path} is not valid YAML{where}: fix the syntax and retry") from None
    return validate_config(data, source=str(path))


def with_overrides(config: SmoothieConfig, **sections: dict[str, Any]) -> SmoothieConfig:
    """A copy with command-line values laid over the file's, validated again."""
    data = config.model_dump()
    for section, values in sections.items():
        if section == "unicode_targets":
            if values:
                data["unicode_targets"] = values
            continue
        data[section].update({k: v for k, v in values.items() if v is not None})
    return validate_config(data, source="options")
