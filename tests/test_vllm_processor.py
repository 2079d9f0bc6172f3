"""smoothie's vLLM logits processor, driven as vLLM drives it (batch updates, then logits), without vLLM:
each row must get exactly what the transformers processor gives that row's setting."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from smoothie_cli.smoothing.runtime import TokenScaleLogitsProcessor
from smoothie_cli.smoothing.scales import scales_from_analysis
from smoothie_cli.smoothing.vllm_processor import (
    MoveDirectionality,
    SmoothingLogitsProcessor,
    read_scales_document,
)

ROWS = 40
ANALYSIS = {
    "format": "smoothie.analysis/1",
    "vocabulary": {"sha256": "test"},
    "tokens": [
        {"id": 3, "kind": "target"},
        {"id": 7, "kind": "target"},
        {"id": 11, "kind": "broken", "weighted_prob": 0.3},
        {"id": 12, "kind": "broken", "weighted_prob": 0.9},
        {"id": 20, "kind": "broken", "weighted_prob": 0.0},
    ],
}


def config(options: dict[str, Any] | None) -> Any:
    model = SimpleNamespace(get_vocab_size=lambda: ROWS)
    return SimpleNamespace(additional_config={"smoothie": options} if options else {}, model_config=model)


def update(added=(), removed=(), moved=()) -> Any:
    return SimpleNamespace(batch_size=0, added=list(added), removed=list(removed), moved=list(moved))


def params(**extra: Any) -> Any:
    return SimpleNamespace(extra_args=extra or None)


def expected(
    logits: torch.Tensor, mode: str, min_scale: float = 0.5, smoothness: float = 10.0
) -> torch.Tensor:
    scales = scales_from_analysis(ANALYSIS, min_scale, smoothness)
    return TokenScaleLogitsProcessor(scales.vector(ROWS), mode=mode)(None, logits)  # type: ignore[arg-type]


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps(ANALYSIS))
    return path


def test_each_row_gets_its_own_setting(analysis: Path) -> None:
    processor = SmoothingLogitsProcessor(config({"scales": str(analysis)}), torch.device("cpu"), False)
    processor.update_state(
        update(
            added=[
                (0, params(), None, []),  # the server's default: scale, 0.5, 10
                (1, params(smoothie_mode="off"), None, []),
                (2, params(smoothie_mode="bias", smoothie_min_scale=0.2), None, []),
                (3, params(smoothie_mode="lower", smoothie_smoothness=100), None, []),
            ]
        )
    )
    torch.manual_seed(0)
    logits = torch.randn(4, ROWS) * 5
    out = processor.apply(logits.clone())
    assert torch.equal(out[0], expected(logits[0:1], "scale")[0])
    assert torch.equal(out[1], logits[1])
    assert torch.equal(out[2], expected(logits[2:3], "bias", 0.2)[0])
    assert torch.equal(out[3], expected(logits[3:4], "lower", 0.5, 100)[0])
    assert not torch.equal(out[0], logits[0])  # something was smoothed at all
    # vLLM compacts its batch: row 3 moves to 1 (one way), then 0 and 2 swap; row 0 leaves first
    processor.update_state(
        update(
            removed=[1], moved=[(3, 1, MoveDirectionality.UNIDIRECTIONAL), (0, 2, MoveDirectionality.SWAP)]
        )
    )
    out = processor.apply(logits[:3].clone())
    assert torch.equal(out[2], expected(logits[2:3], "scale")[0])
    assert torch.equal(out[1], expected(logits[1:2], "lower", 0.5, 100)[0])
    assert torch.equal(out[0], expected(logits[0:1], "bias", 0.2)[0])


def test_no_scales_means_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMOOTHIE_SCALES", "SMOOTHIE_MODE"):
        monkeypatch.delenv(name, raising=False)
    processor = SmoothingLogitsProcessor(config(None), torch.device("cpu"), False)
    processor.update_state(update(added=[(0, params(smoothie_mode="scale"), None, [])]))
    logits = torch.randn(1, ROWS)
    assert torch.equal(processor.apply(logits.clone()), logits)


def test_environment_configures_the_server(analysis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOOTHIE_SCALES", str(analysis))
    monkeypatch.setenv("SMOOTHIE_MODE", "bias")
    processor = SmoothingLogitsProcessor(config(None), torch.device("cpu"), False)
    processor.update_state(update(added=[(0, params(), None, [])]))
    logits = torch.randn(1, ROWS)
    assert torch.equal(processor.apply(logits.clone()), expected(logits, "bias"))


@pytest.mark.parametrize(
    "extra", [{"smoothie_mode": "loud"}, {"smoothie_min_scale": 2}, {"smoothie_smoothness": "x"}]
)
def test_bad_request_settings_are_refused_at_admission(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="smoothie_"):
        SmoothingLogitsProcessor.validate_params(params(**extra))


def test_a_smoothed_checkpoints_record_gives_the_same_scales(tmp_path: Path) -> None:
    made = scales_from_analysis(ANALYSIS, 0.4, 10.0)
    record = {
        "min_scale": 0.4,
        "smoothness": 10.0,
        "scaled_rows": {str(i): s for i, s in made.scales.items()},
    }
    (tmp_path / "smoothie.json").write_text(json.dumps(record))
    document = read_scales_document(tmp_path)
    for low, steep in ((0.4, 10.0), (0.5, 10.0), (0.1, 1000.0)):
        again = scales_from_analysis(document, low, steep).scales
        want = scales_from_analysis(ANALYSIS, low, steep).scales
        assert again.keys() == want.keys()
        assert all(again[i] == pytest.approx(want[i], abs=1e-12) for i in want)


def test_unreadable_scales_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(ValueError, match=r"x\.json"):
        read_scales_document(tmp_path / "x.json")
    with pytest.raises(ValueError, match="neither"):
        read_scales_document(tmp_path)
