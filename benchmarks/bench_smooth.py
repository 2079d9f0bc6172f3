"""Benchmark: smoothing the seed's way (load the whole model, scale rows, save_pretrained) against smoothie's
streamed rewrite — wall time and peak RSS, each in its own process, side by side in one run.

Checkpoints: the embedded Qwen2.5-Coder-0.5B (single file, float32, untied) and a synthetic sharded
Qwen2 checkpoint of about 3 GB (bfloat16, tied like Qwen2.5-1.5B, 1 GB shards), made once in the cache.

    python benchmarks/bench_smooth.py [--skip-synthetic] [--layers 28]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from smoothie_cli.models import model_directory, resolve_model
from smoothie_cli.paths import smoothie_home

SEED_WAY = r"""
import json, sys, torch
from transformers import AutoModelForCausalLM
src, out, scales_path = sys.argv[1:4]
scales = json.load(open(scales_path))
model = AutoModelForCausalLM.from_pretrained(src, dtype="auto")
weight = model.lm_head.weight.data
with torch.no_grad():
    for token, s in scales.items():
        weight[int(token)] *= s
model.save_pretrained(out)
"""


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def synthetic_checkpoint(layers: int) -> Path:
    target = smoothie_home() / "bench" / f"qwen2-synthetic-{layers}l-bf16-tied"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=151_936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=layers,
        num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    staging = Path(tempfile.mkdtemp(dir=target.parent if target.parent.exists() else None))
    model.save_pretrained(staging, max_shard_size="1GB")
    embedded = model_directory(resolve_model("embedded:qwen2.5-coder-0.5b-instruct"))
    AutoTokenizer.from_pretrained(embedded).save_pretrained(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, target)
    return target


def lm_head_bytes(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text())
    dtype = config.get("torch_dtype") or config.get("dtype") or "float32"
    return config["vocab_size"] * config["hidden_size"] * (4 if dtype == "float32" else 2)


def bench(name: str, model_dir: Path, scratch: Path, scales_path: Path) -> list[str]:
    seed_out, ours_out = scratch / f"{name}-seed", scratch / f"{name}-ours"
    seed_s, seed_mb = measure(
        [sys.executable, "-c", SEED_WAY, str(model_dir), str(seed_out), str(scales_path)]
    )
    shutil.rmtree(seed_out, ignore_errors=True)
    command = [sys.executable, "-m", "smoothie_cli", "smooth", str(model_dir), "-o", str(ours_out), "--json"]
    ours_s, ours_mb = measure(command)
    shutil.rmtree(ours_out, ignore_errors=True)
    head_mb = lm_head_bytes(model_dir) / 2**20
    size_gb = sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) / 2**30
    budget = 3 * head_mb + 700
    return [
        f"{name} ({size_gb:.1f} GB)", f"{seed_s:.1f}", f"{ours_s:.1f}", f"{seed_s / ours_s:.2f}×",
        f"{seed_mb:,.0f}", f"{ours_mb:,.0f}", f"{budget:,.0f}", "yes" if ours_mb <= budget else "NO",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--layers", type=int, default=28)
    args = parser.parse_args()
    console = Console(width=140)
    embedded = model_directory(resolve_model("embedded:qwen2.5-coder-0.5b-instruct"))
    # the scales smoothie applies by default, computed once and fed to the seed's way too
    from smoothie_cli.config import SmoothieConfig
    from smoothie_cli.smoothing.scales import scales_from_analysis
    from smoothie_cli.vocab.analysis import analyze_vocabulary
    from smoothie_cli.vocab.tokens import load_vocabulary

    document = json.loads(analyze_vocabulary("bench", load_vocabulary(embedded), SmoothieConfig()).to_json())
    scales = scales_from_analysis(document, 0.5, 10.0)
    rows = []
    with tempfile.TemporaryDirectory(dir=smoothie_home()) as scratch_name:
        scratch = Path(scratch_name)
        scales_path = scratch / "scales.json"
        scales_path.write_text(json.dumps({str(k): v for k, v in scales.scales.items()}))
        rows.append(bench("embedded 0.5B, 1 file, f32", embedded, scratch, scales_path))
        if not args.skip_synthetic:
            synthetic = synthetic_checkpoint(args.layers)
            rows.append(bench("synthetic Qwen2, sharded, bf16, tied", synthetic, scratch, scales_path))
    table = Table(title="smooth: seed's way (load all, scale, save_pretrained) vs smoothie (streamed)")
    columns = ["checkpoint", "seed s", "smoothie s", "speed-up", "seed RSS MB", "smoothie RSS MB",
               "budget MB (3×lm_head+700)", "within"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "checkpoint" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
