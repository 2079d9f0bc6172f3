import json
import shutil
from pathlib import Path

import pytest

from smoothie_cli.errors import SmoothieError
from smoothie_cli.models import model_directory, resolve_model, tokenizer_location
from smoothie_cli.vocab.tokens import load_vocabulary


def test_default_is_embedded():
    source = resolve_model(None)
    assert source.kind == "embedded"
    assert source.location == "qwen2.5-coder-0.5b-instruct"


def test_local_directory(tokenizer_only_dir: Path):
    source = resolve_model(str(tokenizer_only_dir))
    assert source.kind == "local"
    assert tokenizer_location(source) == tokenizer_only_dir.resolve()


def test_peft_adapter_resolves_its_base(tmp_path: Path, tokenizer_only_dir: Path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tokenizer_only_dir), "peft_type": "LORA"})
    )
    source = resolve_model(str(adapter))
    assert source.kind == "peft"
    assert source.base is not None and source.base.kind == "local"
    # no tokenizer in the adapter: the base's is used, and the weights come from the base
    assert tokenizer_location(source) == tokenizer_only_dir.resolve()
    assert model_directory(source) == tokenizer_only_dir.resolve()
    # a tokenizer saved with the adapter wins
    shutil.copy(tokenizer_only_dir / "tokenizer_config.json", adapter / "tokenizer_config.json")
    assert tokenizer_location(source) == adapter.resolve()


def test_peft_adapter_without_base(tmp_path: Path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(SmoothieError, match="base_model_name_or_path"):
        resolve_model(str(tmp_path))


def _fake_hub_cache(hub_cache: Path, repo_id: str, files: Path) -> Path:
    """Lay out a model the way huggingface_hub caches a download."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(files, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_hub_id_served_from_the_hf_cache(tokenizer_only_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import constants

    snapshot = _fake_hub_cache(Path(constants.HF_HUB_CACHE), "Qwen/Qwen2.5-7B-Instruct", tokenizer_only_dir)
    source = resolve_model("Qwen/Qwen2.5-7B-Instruct")
    assert source.kind == "hub"
    location = tokenizer_location(source)
    assert location.resolve() == snapshot.resolve()
    assert load_vocabulary(location).size == 151_643


def test_hub_id_offline_and_uncached():
    source = resolve_model("Qwen/Qwen2.5-72B-Instruct")
    with pytest.raises(SmoothieError, match="not in the Hugging Face cache"):
        tokenizer_location(source)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("embedded:nope", "unknown embedded model"),
        ("./no/such/dir", "does not exist"),
        ("missing.gguf", "does not exist"),
        ("not a model!", "not a path"),
        (" ", "empty model name"),
    ],
)
def test_bad_model_arguments(spec: str, fragment: str):
    with pytest.raises(SmoothieError, match=fragment):
        resolve_model(spec)


def test_directory_that_is_not_a_model(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SmoothieError, match="not a model directory"):
        resolve_model(str(tmp_path))
    with pytest.raises(SmoothieError, match=r"not a \.gguf"):
        resolve_model(str(tmp_path / "notes.txt"))


def test_gguf_file_and_directory_with_one_gguf(tmp_path: Path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)).kind == "gguf"
    assert resolve_model(str(tmp_path)).kind == "gguf"
    assert tokenizer_location(resolve_model(str(gguf))) == gguf.resolve()


def test_hub_adapter_loads_on_its_base(tiny_qwen, tmp_path: Path):
    """A hub id holding a LoRA adapter (like IanLi233/Cautious_Qwen) loads as base + adapter, offline."""
    from huggingface_hub import constants
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM

    from smoothie_cli.models.loading import load_model, load_tokenizer

    base_dir = tiny_qwen()
    adapter_dir = tmp_path / "adapter"
    peft = get_peft_model(
        Qwen2ForCausalLM.from_pretrained(str(base_dir)), LoraConfig(r=2, target_modules=["q_proj"])
    )
    peft.save_pretrained(str(adapter_dir))
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (adapter_dir / "adapter_config.json").write_text(
        json.dumps(config | {"base_model_name_or_path": str(base_dir)})
    )
    _fake_hub_cache(Path(constants.HF_HUB_CACHE), "someone/tiny-cautious-draft", adapter_dir)
    source = resolve_model("someone/tiny-cautious-draft")
    assert source.kind == "hub"
    model = load_model(source, device="cpu")
    assert type(model).__name__.startswith("PeftModel")
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert load_tokenizer(source).vocab_size == 151_643  # no tokenizer in the adapter: the base's
