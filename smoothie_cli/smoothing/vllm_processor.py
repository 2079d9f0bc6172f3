"""Run-time smoothing inside vLLM: a V1 logits processor, one server serving several settings.

Load it with the server's `--logits-processors smoothie_cli.smoothing.vllm_processor:SmoothingLogitsProcessor`
or `vllm.LLM(..., logits_processors=[SmoothingLogitsProcessor])`. Its scales come from an `analysis.json`
written by `smoothie analyze -o`, or from the `smoothie.json` a `smoothie smooth` output holds; the server's
setting from vLLM's `additional_config` (`--additional-config '{"smoothie": {"scales": PATH, "mode": "scale",
"min_scale": 0.5, "smoothness": 10}}'`) or, when that is absent, the environment (SMOOTHIE_SCALES,
SMOOTHIE_MODE, SMOOTHIE_MIN_SCALE, SMOOTHIE_SMOOTHNESS). Each request may choose its own through its extra
args (`vllm_xargs` in an OpenAI request, `SamplingParams(extra_args=...)` offline): `smoothie_mode` (scale,
lower, bias or off), `smoothie_min_scale`, `smoothie_smoothness`.

The modes are those of `smoothie_cli.smoothing.runtime` (the same arithmetic, `smoothing.apply`). This module
imports only the standard library, torch, numpy and smoothie's light modules, so `pip install --no-deps
smoothie-cli` into vLLM's environment is enough: vLLM pins its own transformers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from smoothie_cli.smoothing.apply import MODES, apply_factors, factors_for
from smoothie_cli.smoothing.scales import check_parameters, scales_from_analysis

try:  # vLLM's base class when vLLM is here; smoothie's own tests exercise the logic without it
    from vllm.v1.sample.logits_processor import LogitsProcessor as _Base
    from vllm.v1.sample.logits_processor import MoveDirectionality
except ImportError:  # vLLM is not a dependency of smoothie
    import enum

    _Base = object  # type: ignore[assignment,misc]

    class MoveDirectionality(enum.Enum):  # type: ignore[no-redef]  # vLLM's, as 0.32 defines it
        UNIDIRECTIONAL = enum.auto()
        SWAP = enum.auto()


ANALYSIS_FORMAT = "smoothie.analysis/1"  # as vocab.analysis writes it (not imported: it needs pydantic)
OFF = "off"
ENVIRONMENT = {
    "scales": "SMOOTHIE_SCALES",
    "mode": "SMOOTHIE_MODE",
    "min_scale": "SMOOTHIE_MIN_SCALE",
    "smoothness": "SMOOTHIE_SMOOTHNESS",
}
REQUEST_KEYS = {
    "mode": "smoothie_mode",
    "min_scale": "smoothie_min_scale",
    "smoothness": "smoothie_smoothness",
}


@dataclass(frozen=True)
class Setting:
    mode: str  # scale | lower | bias | off
    min_scale: float = 0.5
    smoothness: float = 10.0

    def checked(self) -> Setting:
        if self.mode not in (*MODES, OFF):
            raise ValueError(f"smoothie_mode must be one of {', '.join((*MODES, OFF))}, not {self.mode!r}")
        if self.mode != OFF:
            try:
                check_parameters(self.min_scale, self.smoothness)
            except Exception as error:  # SmoothieError names the CLI flag; say it in request terms
                raise ValueError(
                    f"smoothie_min_scale must be in [0, 1] and smoothie_smoothness above 1, not "
                    f"{self.min_scale} and {self.smoothness}"
                ) from error
        return self


def request_setting(extra_args: Mapping[str, Any] | None, default: Setting) -> Setting:
    """A request's setting: its extra args over the server's default."""
    extra = extra_args or {}
    try:
        return Setting(
            str(extra.get(REQUEST_KEYS["mode"], default.mode)),
            float(extra.get(REQUEST_KEYS["min_scale"], default.min_scale)),
            float(extra.get(REQUEST_KEYS["smoothness"], default.smoothness)),
        ).checked()
    except (TypeError, ValueError) as error:
        given = {k: v for k, v in extra.items() if k in REQUEST_KEYS.values()}
        raise ValueError(f"smoothie extra args {given}: {error}") from None


def server_options(additional_config: Any = None) -> dict[str, Any]:
    """The server's options: vLLM's additional_config["smoothie"], else the SMOOTHIE_* environment."""
    given = additional_config.get("smoothie") if isinstance(additional_config, Mapping) else None
    if given:
        unknown = set(given) - set(ENVIRONMENT)
        if unknown:
            raise ValueError(
                f"additional_config.smoothie: unknown keys {sorted(unknown)}; use {sorted(ENVIRONMENT)}"
            )
        return dict(given)
    return {key: os.environ[name] for key, name in ENVIRONMENT.items() if os.environ.get(name)}


def default_setting(options: Mapping[str, Any]) -> Setting:
    if not options.get("scales"):
        return Setting(OFF)
    return Setting(
        str(options.get("mode", "scale")),
        float(options.get("min_scale", 0.5)),
        float(options.get("smoothness", 10.0)),
    ).checked()


def read_scales_document(path: str | Path) -> dict[str, Any]:
    """An analysis document from an analysis.json, or from a smoothed checkpoint's smoothie.json (a
    directory holding either works). A smoothie.json stores scales, not probabilities: each scaled row's
    weighted probability is recovered by inverting the formula at the record's min_scale and smoothness,
    so a request may still ask for another setting."""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in ("analysis.json", "smoothie.json") if (path / name).is_file()]
        if not found:
            raise ValueError(f"{path} holds neither analysis.json nor smoothie.json")
        path = found[0]
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read smoothie scales from {path}: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a smoothie analysis.json or smoothie.json")
    if document.get("format") == ANALYSIS_FORMAT:
        return document
    if isinstance(document.get("scaled_rows"), dict):
        return _analysis_from_record(document, path)
    raise ValueError(f"{path} is not a smoothie analysis.json or smoothie.json")


def _analysis_from_record(record: dict[str, Any], path: Path) -> dict[str, Any]:
    low, steep = record.get("min_scale"), record.get("smoothness")
    if not isinstance(low, (int, float)) or not isinstance(steep, (int, float)) or low >= 1 or steep <= 1:
        raise ValueError(
            f"{path} does not record the min_scale (< 1) and smoothness its scales were made with"
        )
    rows = []
    for key, scale in record["scaled_rows"].items():
        if scale <= low:
            rows.append({"id": int(key), "kind": "target"})
        else:  # S = 1 − (1 − m)·ln(1 + (k − 1)p)/ln k, solved for p
            share = (1.0 - float(scale)) / (1.0 - low)
            rows.append(
                {"id": int(key), "kind": "broken", "weighted_prob": (steep**share - 1.0) / (steep - 1.0)}
            )
    return {"format": ANALYSIS_FORMAT, "tokens": rows, "vocabulary": {"sha256": "from " + path.name}}


class SmoothingLogitsProcessor(_Base):  # type: ignore[misc,valid-type]
    """vLLM V1 logits processor: per-request smoothing of next-token logits (see the module's docstring)."""

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """A request's extra args are checked when vLLM admits it: a bad one is a 400, never a crash."""
        request_setting(getattr(sampling_params, "extra_args", None), Setting("scale"))

    def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool) -> None:
        options = server_options(getattr(vllm_config, "additional_config", None))
        self.default = default_setting(options)
        self.device = device
        self.rows = _vocab_size(vllm_config)
        self.document = read_scales_document(options["scales"]) if options.get("scales") else None
        self.settings: dict[int, Setting] = {}  # batch index → its setting (off rows are absent)
        self._factors: dict[Setting, Any] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # smoothing changes greedy answers: that is its purpose

    def update_state(self, batch_update: Any) -> None:
        if not batch_update:
            return
        for index in batch_update.removed:
            self.settings.pop(index, None)
        for index, params, *_ in batch_update.added:
            setting = request_setting(getattr(params, "extra_args", None), self.default)
            if setting.mode != OFF and self.document is None:
                setting = Setting(OFF)  # no scales on this server: validate_params cannot know; nothing to do
            if setting.mode == OFF:
                self.settings.pop(index, None)
            else:
                self.settings[index] = setting
        for first, second, direction in batch_update.moved:
            a, b = self.settings.pop(first, None), self.settings.pop(second, None)
            if a is not None:
                self.settings[second] = a
            if b is not None and direction == MoveDirectionality.SWAP:
                self.settings[first] = b

    def apply(self, logits: Any) -> Any:
        if not self.settings:
            return logits
        groups: dict[Setting, list[int]] = {}
        for index, setting in self.settings.items():
            if index < logits.shape[0]:
                groups.setdefault(setting, []).append(index)
        for setting, indices in groups.items():
            factors = self.factors(setting)
            if len(indices) == logits.shape[0]:
                apply_factors(logits, factors, setting.mode)
                continue
            where = torch.tensor(indices, device=logits.device)
            logits[where] = apply_factors(logits[where], factors, setting.mode)
        return logits

    def factors(self, setting: Setting) -> Any:
        """The setting's per-token factors on the device (scales, or their logs in bias mode), cached."""
        if setting not in self._factors:
            assert self.document is not None
            scales = scales_from_analysis(self.document, setting.min_scale, setting.smoothness)
            vector = torch.from_numpy(scales.vector(self.rows))
            self._factors[setting] = factors_for(vector, setting.mode).to(self.device)
        return self._factors[setting]


def _vocab_size(vllm_config: Any) -> int:
    """The width of vLLM's logits: the model's vocabulary rows."""
    return int(vllm_config.model_config.get_vocab_size())
