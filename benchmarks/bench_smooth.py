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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from smoothie_cli.models import model_directory, resolve_model
from smoothie_cli.paths import smoothie_home

# Runs a module or a script and reports its own peak RSS (VmHWM) on stderr. Measured in the child
# because ru_maxrss survives exec: a child forked from a big parent would report the parent's size.
LAUNCHER = r"""
import atexit, runpy, sys
def report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            sys.stderr.write("PEAK_KB " + line.split()[1] + "\n")
atexit.register(report)
mode, target = sys.argv[1], sys.argv[2]
sys.argv = [target, *sys.argv[3:]]
if mode == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(open(target).read(), target, "exec"), {"__name__": "__main__"})
"""

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


def measure(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, after flushing earlier writes to disk."""
    os.sync()
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", LAUNCHER, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{result.stderr[-2000:]}")
    peak_kb = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_KB")][-1]
    return seconds, peak_kb / 1024


def synthetic_checkpoint(layers: int) -> Path:
    target = smoothie_home() / "bench" / f"qwen2-synthetic-{layers}l-bf16-tied"
    if not (target / "config.json").is_file():  # built in a child, so this process stays small
        subprocess.run([sys.executable, __file__, "--make-synthetic", str(layers)], check=True)
    return target


def make_synthetic(layers: int) -> None:
    target = smoothie_home() / "bench" / f"qwen2-synthetic-{layers}l-bf16-tied"
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


def lm_head_bytes(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text())
    dtype = config.get("torch_dtype") or config.get("dtype") or "float32"
    return config["vocab_size"] * config["hidden_size"] * (4 if dtype == "float32" else 2)


def bench(name: str, model_dir: Path, scratch: Path, scales_path: Path, repeat: int) -> list[str]:
    seed_script = scratch / "seed_way.py"
    seed_script.write_text(SEED_WAY)
    seed_runs, ours_runs = [], []
    for _ in range(repeat):  # alternate, so both see the same disk and page-cache weather
        out = scratch / "seed-out"
        seed_runs.append(measure(["script", str(seed_script), str(model_dir), str(out), str(scales_path)]))
        shutil.rmtree(out, ignore_errors=True)
        out = scratch / "ours-out"
        ours_runs.append(measure(["-m", "smoothie_cli", "smooth", str(model_dir), "-o", str(out), "--json"]))
        shutil.rmtree(out, ignore_errors=True)
    seed_s, seed_mb = statistics.median(r[0] for r in seed_runs), max(r[1] for r in seed_runs)
    ours_s, ours_mb = statistics.median(r[0] for r in ours_runs), max(r[1] for r in ours_runs)
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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--make-synthetic", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_synthetic:
        make_synthetic(args.make_synthetic)
        return
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
        rows.append(bench("embedded 0.5B, 1 file, f32", embedded, scratch, scales_path, args.repeat))
        if not args.skip_synthetic:
            synthetic = synthetic_checkpoint(args.layers)
            rows.append(
                bench("synthetic Qwen2, sharded, bf16, tied", synthetic, scratch, scales_path, args.repeat)
            )
    table = Table(
        title=f"smooth: seed's way (load, scale, save_pretrained) vs smoothie, median of {args.repeat}"
    )
    columns = ["checkpoint", "seed s", "smoothie s", "speed-up", "seed RSS MB", "smoothie RSS MB",
               "budget MB (3×lm_head+700)", "within"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "checkpoint" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
