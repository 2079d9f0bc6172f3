from pathlib import Path

import pytest
import yaml

from smoothie_cli.config import SmoothieConfig, load_config, validate_config, with_overrides
from smoothie_cli.errors import SmoothieError
from smoothie_cli.unicode_blocks import CJK

ROOT = Path(__file__).resolve().parents[1]

SEED_CONFIG = """
model:
  name: "Qwen/Qwen2.5-0.5B-Instruct"
  output_path: "./modified_model"
analysis:
  method: "ngram"
  window_size: 2
  sample_size: 1000
adjustment:
  min_scale: 0.5
  smoothness: 10.0
unicode_targets:
  - name: CJK Unified Ideographs
    range: [0x4E00, 0x9FFF]
  - name: CJK Symbols and Punctuation
    range: [0x3000, 0x303F]
"""


def test_default_yaml_matches_built_in_defaults():
    from_file = load_config(ROOT / "configs" / "default.yaml")
    assert from_file == SmoothieConfig()
    assert [(t.range[0], t.range[1]) for t in from_file.unicode_targets] == [(b.start, b.end) for b in CJK]
    assert len(from_file.unicode_targets) == 11


def test_seed_config_loads_unchanged(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(SEED_CONFIG)
    cfg = load_config(path)
    assert cfg.model.name == "Qwen/Qwen2.5-0.5B-Instruct"
    assert cfg.analysis.window_size == 2
    assert [t.range for t in cfg.unicode_targets] == [(0x4E00, 0x9FFF), (0x3000, 0x303F)]


def test_weights_normalised_over_used_windows():
    cfg = validate_config({"analysis": {"window_size": 3, "ngram_weights": [2, 2, 100]}})
    assert cfg.analysis.normalised_weights() == {2: 0.5, 3: 0.5}
    cfg = validate_config({"analysis": {"window_size": 4, "ngram_weights": [1.0]}})
    assert cfg.analysis.normalised_weights() == {2: 1.0, 3: 0.0, 4: 0.0}


def test_code_points_as_strings():
    cfg = validate_config({"unicode_targets": [{"name": "x", "range": ["U+AC00", "0xD7AF"]}]})
    assert cfg.unicode_targets[0].range == (0xAC00, 0xD7AF)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"analysis": {"window_size": 5}}, "analysis.window_size"),
        ({"analysis": {"window_size": 1}}, "analysis.window_size"),
        ({"analysis": {"ngram_weights": [-1, 1, 1]}}, "must not be negative"),
        ({"analysis": {"window_size": 2, "ngram_weights": [0, 1, 1]}}, "all zero"),
        ({"unicode_targets": [{"name": "x", "range": [0x9FFF, 0x4E00]}]}, "is after its end"),
        ({"unicode_targets": [{"name": "x", "range": [0x10000, 0x110000]}]}, "past U+10FFFF"),
        ({"unicode_targets": [{"name": "x", "range": ["zz", 1]}]}, "not a hexadecimal"),
        ({"analysis": {"windw_size": 2}}, "unknown key"),
        ({"adjustment": {"smoothness": 1.0}}, "adjustment.smoothness"),
        ({"adjustment": {"min_scale": 1.5}}, "adjustment.min_scale"),
        ({"unicode_targets": []}, "unicode_targets"),
    ],
)
def test_bad_config_is_one_clear_line(data, fragment):
    with pytest.raises(SmoothieError) as info:
        validate_config(data, source="cfg.yaml")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith("cfg.yaml: ")


def test_unreadable_and_invalid_yaml(tmp_path: Path):
    with pytest.raises(SmoothieError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("analysis: [unclosed\n")
    with pytest.raises(SmoothieError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(SmoothieError, match="expected a mapping"):
        load_config(scalar)


def test_overrides_replace_targets_and_keep_the_rest():
    cfg = with_overrides(
        SmoothieConfig(),
        analysis={"window_size": 4, "direction": None},
        unicode_targets=[{"name": "Hangul Syllables", "range": [0xAC00, 0xD7AF]}],
    )
    assert cfg.analysis.window_size == 4
    assert cfg.analysis.direction == "forward"
    assert [t.name for t in cfg.unicode_targets] == ["Hangul Syllables"]
    assert yaml.safe_load(yaml.safe_dump(cfg.model_dump()))  # plain data, serialisable
