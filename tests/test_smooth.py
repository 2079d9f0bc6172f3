"""`smoothie smooth` on tiny random Qwen2 checkpoints (tied/untied, single/sharded, bf16/fp32)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from smoothie_cli.smoothing.scales import smoothing_scale

VARIANTS = [
    pytest.param(
        tied,
        dtype,
        sharded,
        id=f"{'tied' if tied else 'untied'}-{dtype}-{'sharded' if sharded else 'single'}",
    )
    for tied in (True, False)
    for dtype in ("bfloat16", "float32")
    for sharded in (False, True)
]


def tensor(model_dir: Path, name: str) -> torch.Tensor:
    index = model_dir / "model.safetensors.index.json"
    shard = json.loads(index.read_text())["weight_map"][name] if index.exists() else "model.safetensors"
    with safe_open(str(model_dir / shard), "pt") as handle:
        return handle.get_tensor(name)


def digest_tree(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("tied", "dtype", "sharded"), VARIANTS)
def test_only_lm_head_rows_change(tiny_qwen, tmp_path: Path, cli, tied: bool, dtype: str, sharded: bool):
    source = tiny_qwen(tied=tied, dtype=dtype, sharded=sharded)
    before = digest_tree(source)
    out = tmp_path / "smoothed"
    code, stdout, _ = cli(["smooth", str(source), "-o", str(out), "--min-scale", "0.3", "--json"])
    assert code == 0
    summary = json.loads(stdout)
    assert summary["untied"] is tied and summary["verified"] is True
    assert summary["target_tokens"] == 26_153
    assert digest_tree(source) == before  # the input is never modified

    record = json.loads((out / "smoothie.json").read_text())
    scales = torch.ones(151_936)
    for token, s in record["scaled_rows"].items():
        scales[int(token)] = s
    assert summary["scaled_tokens"] == int((scales != 1).sum()) > 26_153
    assert scales[torch.tensor([i for i in map(int, record["scaled_rows"])])].min() >= 0.3

    original_head = tensor(source, "model.embed_tokens.weight" if tied else "lm_head.weight")
    new_head = tensor(out, "lm_head.weight")
    assert new_head.dtype == getattr(torch, dtype)
    expected = (original_head.float() * scales[:, None]).to(original_head.dtype)
    assert torch.equal(new_head, expected)
    unchanged = scales == 1
    assert torch.equal(new_head[unchanged], original_head[unchanged])
    assert torch.equal(tensor(out, "model.embed_tokens.weight"), tensor(source, "model.embed_tokens.weight"))
    assert torch.equal(
        tensor(out, "model.layers.1.mlp.down_proj.weight"),
        tensor(source, "model.layers.1.mlp.down_proj.weight"),
    )

    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is False
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md"):
        assert (out / name).is_file(), name
    assert "min_scale | 0.3" in (out / "README.md").read_text()

    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(str(out), dtype=getattr(torch, dtype))
    assert reloaded.lm_head.weight.data_ptr() != reloaded.model.embed_tokens.weight.data_ptr()
    assert torch.equal(reloaded.lm_head.weight.detach(), new_head)
    assert torch.equal(
        reloaded.model.embed_tokens.weight.detach(), tensor(source, "model.embed_tokens.weight")
    )


def test_scale_formula():
    assert smoothing_scale(0.0, 0.5, 10) == 1.0
    assert smoothing_scale(1.0, 0.5, 10) == 0.5
    assert smoothing_scale(2.0, 0.5, 10) == 0.5
    assert smoothing_scale(-1.0, 0.5, 10) == 1.0
    # S = 1 − (1 − m)·ln(1 + (s − 1)p)/ln(s)
    assert smoothing_scale(0.1, 0.5, 10) == pytest.approx(1 - 0.5 * 0.6418538861723947 / 2.302585092994046)
    assert smoothing_scale(0.1, 0.5, 1000) < smoothing_scale(0.1, 0.5, 10) < smoothing_scale(0.1, 0.5, 1.1)


def test_force_rules(tiny_qwen, tmp_path: Path, cli):
    source = tiny_qwen()
    out = tmp_path / "out"
    assert cli(["smooth", str(source), "-o", str(out), "--json"])[0] == 0
    first = json.loads((out / "smoothie.json").read_text())["min_scale"]
    code, stdout, err = cli(["smooth", str(source), "-o", str(out), "--min-scale", "0.2"])
    assert code == 2 and "already exists" in err and "--force" in err and stdout == ""
    assert json.loads((out / "smoothie.json").read_text())["min_scale"] == first
    assert cli(["smooth", str(source), "-o", str(out), "--min-scale", "0.2", "--force", "--json"])[0] == 0
    assert json.loads((out / "smoothie.json").read_text())["min_scale"] == 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_precomputed_analysis_gives_the_same_model(tiny_qwen, tmp_path: Path, cli):
    source = tiny_qwen()
    assert cli(["analyze", str(source), "-o", str(tmp_path / "a"), "--json"])[0] == 0
    args = ["smooth", str(source), "--json"]
    assert (
        cli([*args, "-o", str(tmp_path / "x"), "--analysis", str(tmp_path / "a" / "analysis.json")])[0] == 0
    )
    assert cli([*args, "-o", str(tmp_path / "y")])[0] == 0
    x = json.loads((tmp_path / "x" / "smoothie.json").read_text())
    y = json.loads((tmp_path / "y" / "smoothie.json").read_text())
    assert x["scaled_rows"] == y["scaled_rows"] and x["analysis_sha256"] == y["analysis_sha256"]
    code, _, err = cli([*args, "-o", str(tmp_path / "z"), "--analysis", str(tmp_path / "a" / "analysis.json"),
                        "--window-size", "4"])  # fmt: skip
    assert code == 2 and "different analysis config" in err


def test_interrupted_write_leaves_nothing(tiny_qwen, tmp_path: Path, cli, monkeypatch):
    from smoothie_cli.smoothing import checkpoint

    def explode(path, plan):
        path.write_bytes(b"half a shard")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "write_safetensors", explode)
    code, _, _ = cli(["smooth", str(tiny_qwen()), "-o", str(tmp_path / "out")])
    assert code == 130  # Typer maps Ctrl-C to exit status 130
    assert list(tmp_path.iterdir()) == []


KILL_SCRIPT = r"""
import sys, time
from smoothie_cli.models import safetensors_io
from smoothie_cli.smoothing import checkpoint
real = checkpoint.iter_row_chunks
def slow(*args, **kwargs):
    for item in real(*args, **kwargs):
        time.sleep(0.5)
        yield item
checkpoint.iter_row_chunks = slow
safetensors_io.CHUNK_BYTES = 1 << 20
from smoothie_cli.cli import main
main(sys.argv[1:])
"""


def test_killed_run_leaves_no_model_and_the_next_run_cleans_up(tiny_qwen, tmp_path: Path, cli):
    source, out = tiny_qwen(), tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, "smooth", str(source), "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 60
    while not any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    assert cli(["smooth", str(source), "-o", str(out), "--json"])[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--min-scale", "1.5"], "outside [0, 1]"),
        (["--min-scale", "-0.1"], "outside [0, 1]"),
        (["--smoothness", "1"], "greater than 1"),
        (["--smoothness", "0.5"], "greater than 1"),
    ],
)
def test_bad_parameters(tiny_qwen, tmp_path: Path, cli, args, fragment):
    code, out, err = cli(["smooth", str(tiny_qwen()), "-o", str(tmp_path / "o"), *args])
    assert code == 2 and fragment in err and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_analysis_for_another_vocabulary(tiny_qwen, tmp_path: Path, cli):
    source = tiny_qwen()
    cli(["analyze", str(source), "-o", str(tmp_path / "a"), "--json"])
    doc = json.loads((tmp_path / "a" / "analysis.json").read_text())
    doc["vocabulary"]["sha256"] = "0" * 64
    (tmp_path / "a" / "analysis.json").write_text(json.dumps(doc))
    code, _, err = cli(
        [
            "smooth",
            str(source),
            "-o",
            str(tmp_path / "o"),
            "--analysis",
            str(tmp_path / "a" / "analysis.json"),
        ]
    )
    assert code == 2 and "another vocabulary" in err
    assert not (tmp_path / "o").exists()


def test_model_without_lm_head(tiny_qwen, tmp_path: Path, cli):
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "headless"
    shutil.copytree(tiny_qwen(), broken)
    weights = load_file(str(broken / "model.safetensors"))
    del weights["lm_head.weight"]
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    code, _, err = cli(["smooth", str(broken), "-o", str(tmp_path / "o")])
    assert code == 2 and "lm_head" in err
    assert not (tmp_path / "o").exists()


def test_unwritable_output(tiny_qwen, tmp_path: Path, cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = cli(["smooth", str(tiny_qwen()), "-o", str(blocker / "out")])
    assert code == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1


def test_output_inside_input_is_refused(tiny_qwen, cli):
    source = tiny_qwen()
    code, _, err = cli(["smooth", str(source), "-o", str(source / "sub")])
    assert code == 2 and "inside the input" in err
    assert not (source / "sub").exists()


def test_pickle_only_checkpoint_is_refused(tmp_path: Path, cli, tokenizer_only_dir: Path):
    (tokenizer_only_dir / "pytorch_model.bin").write_bytes(b"pickle")
    code, _, err = cli(["smooth", str(tokenizer_only_dir), "-o", str(tmp_path / "o")])
    assert code == 2 and "safetensors only" in err


def test_default_output_name(tiny_qwen, tmp_path: Path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tiny_qwen()
    code, stdout, _ = cli(["smooth", str(source), "--json", "--min-scale", "0.4", "--smoothness", "100"])
    assert code == 0
    assert Path(json.loads(stdout)["output"]) == (
        tmp_path / "modified_model" / f"{source.name}_min0.4_smooth100.0"
    )
    assert os.path.isdir(json.loads(stdout)["output"])
