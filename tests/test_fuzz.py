"""Hostile inputs, fuzzed: every reader of an outside file gives a valid result or one SmoothieError line.

Real small files of each format are damaged by hypothesis (tests/fuzzing.py) and handed to the readers
directly (fast) and through a few CLI paths end to end. The one rule: a valid result or `SmoothieError`
(one line); never another exception, never a hang, never an output left behind. `make test` runs a few
dozen inputs per format (derandomized, so reproducible); `make fuzz` sets SMOOTHIE_FUZZ_EXAMPLES and goes
past 10,000 inputs in all, printing the count per format.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fuzzing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smoothie_cli.errors import SmoothieError

LONG = int(os.environ.get("SMOOTHIE_FUZZ_EXAMPLES", "0"))
TIME_LIMIT_S = 20  # per input: a reader that takes longer is hanging


def fuzz_settings(quick: int, share: float = 1.0) -> settings:
    """`quick` inputs in `make test` (fixed seed), or a share of SMOOTHIE_FUZZ_EXAMPLES in `make fuzz`."""
    return settings(
        max_examples=max(1, int(LONG * share)) if LONG else quick,
        deadline=None,
        database=None,
        derandomize=not LONG,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


class Hang(BaseException):
    """Not an Exception, so no `except Exception` in the code under test can swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def listing(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def obeys_rule(fmt: str, call: Callable[[], Any], workdir: Path) -> Any:
    """Run `call`: a result, or a one-line SmoothieError; nothing new written under `workdir`."""
    fuzzing.COUNTS[fmt] += 1
    before = listing(workdir)
    result = None
    with time_limit(TIME_LIMIT_S):
        try:
            result = call()
        except SmoothieError as error:
            fuzzing.REJECTED[fmt] += 1
            message = str(error)
            assert message.strip() and "\n" not in message, f"not one line: {message!r}"
    created = listing(workdir) - before
    assert not created, f"{fmt}: the reader left {sorted(created)} behind"
    return result


# ---- seeds ---------------------------------------------------------------------------------------------


class Seeds:
    """The seed files (a plain class, so hypothesis prints it as one line)."""

    root: Path
    tokenizer_spec: dict[str, Any]
    tokenizer_dir: Path
    vocab_dir: Path
    model_single: Path  # tied, one model.safetensors
    model_sharded: Path  # untied, model.safetensors.index.json + shards
    safetensors: Path
    gguf: Path
    analysis: Path
    gate_dir: Path
    runs: Path
    datasets: dict[str, Path]
    adapter_dir: Path
    config_yaml: Path
    grid_yaml: Path
    smoothed: Path  # a checkpoint written by smooth, with its smoothie.json

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"Seeds({self.root})"


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory, qwen_tokenizer_dir: Path) -> Seeds:
    from smoothie_cli.cautious.gate import GateCalibration
    from smoothie_cli.config import SmoothieConfig
    from smoothie_cli.vocab.analysis import analyze_vocabulary
    from smoothie_cli.vocab.tokens import load_vocabulary

    root = tmp_path_factory.mktemp("fuzz-seeds")
    spec = fuzzing.small_tokenizer_spec(qwen_tokenizer_dir)
    tokenizer_dir = fuzzing.write_tokenizer_dir(root / "tokenizer", spec)
    vocab_dir = root / "vocab"
    vocab_dir.mkdir()
    (vocab_dir / "vocab.json").write_text(json.dumps(spec["model"]["vocab"], ensure_ascii=False), "utf-8")
    merges = "\n".join(" ".join(m) for m in spec["model"]["merges"])
    (vocab_dir / "merges.txt").write_text("#version: 0.2\n" + merges + "\n", "utf-8")
    model_single = fuzzing.write_tiny_model(root / "model-single", spec, tied=True, shard_kb=None)
    model_sharded = fuzzing.write_tiny_model(root / "model-sharded", spec, tied=False, shard_kb=24)
    assert (model_sharded / "model.safetensors.index.json").is_file()
    analysis = analyze_vocabulary("fuzz-seed", load_vocabulary(tokenizer_dir), SmoothieConfig())
    assert analysis.identification.target and analysis.identification.fragments
    (root / "analysis.json").write_text(analysis.to_json(), "utf-8")
    gate_dir = root / "gate"
    gate_dir.mkdir()
    GateCalibration(0.68, 0.02, {"f1": 0.9, "recall": 0.8, "over_refusal": 0.02, "n": 300}).save(gate_dir)
    (root / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _run_records()), "utf-8")
    smoothed = _smoothed(model_single, root / "analysis.json", root / "smoothed")
    tokens = sorted(spec["model"]["vocab"], key=spec["model"]["vocab"].__getitem__)
    configs = Path(__file__).resolve().parents[1] / "configs"
    return Seeds(
        root=root,
        tokenizer_spec=spec,
        tokenizer_dir=tokenizer_dir,
        vocab_dir=vocab_dir,
        model_single=model_single,
        model_sharded=model_sharded,
        safetensors=fuzzing.write_safetensors_seed(root / "seed.safetensors"),
        gguf=fuzzing.write_gguf_seed(root / "tiny.gguf", tokens[:40]),
        analysis=root / "analysis.json",
        gate_dir=gate_dir,
        runs=root / "runs.jsonl",
        datasets=_dataset_files(root),
        adapter_dir=_adapter(root / "adapter", model_single),
        config_yaml=configs / "default.yaml",
        grid_yaml=configs / "sweep-min-scale.yaml",
        smoothed=smoothed,
    )


def _smoothed(model: Path, analysis: Path, out: Path) -> Path:
    """A smoothed checkpoint (its smoothie.json is a seed), written by smooth_checkpoint."""
    from smoothie_cli.smoothing.checkpoint import smooth_checkpoint
    from smoothie_cli.smoothing.scales import scales_from_file

    smooth_checkpoint(model, out, scales_from_file(analysis), provenance={"base_model": str(model),
                      "min_scale": 0.5, "smoothness": 10.0})  # fmt: skip
    return out


def _dataset_files(root: Path) -> dict[str, Path]:
    """The same real prompts (chinese-elicit) as .jsonl, .csv (with choices and answers) and .json."""
    from smoothie_cli.data.chinese_elicit import chinese_elicit_examples

    examples = chinese_elicit_examples()[:12]
    paths = {"jsonl": root / "prompts.jsonl", "csv": root / "questions.csv", "json": root / "rows.json"}
    rows = [{"prompt": e.prompt, "id": e.id} for e in examples]
    paths["jsonl"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    with open(paths["csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "choices", "answer"])
        writer.writerows([e.prompt, "中文|한국어|English", n % 3] for n, e in enumerate(examples))
    labelled = {"examples": [{"prompt": e.prompt, "label": "safe"} for e in examples]}
    paths["json"].write_text(json.dumps(labelled, ensure_ascii=False), "utf-8")
    return paths


def _adapter(target: Path, base: Path) -> Path:
    """A PEFT adapter directory's adapter_config.json, written by peft."""
    from peft import LoraConfig

    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], base_model_name_or_path=str(base))
    config.save_pretrained(str(target))
    return target


def _run_records() -> list[dict[str, Any]]:
    """runs.jsonl lines as `run_sweep` writes them."""
    settings_ = [
        (1.0, "no-chinese", "chinese-elicit", "no_chinese"),
        (1.0, "mc", "mmlu", "acc"),
        (0.5, "no-chinese", "chinese-elicit", "no_chinese"),
        (0.5, "mc", "mmlu", "acc"),
    ]
    return [
        {
            "key": f"{n:024x}",
            "min_scale": min_scale,
            "smoothness": 10.0,
            "task": task,
            "dataset": dataset,
            "n": 32,
            "scores": {metric: 0.5 + n / 10},
            "intervals": {metric: [0.3, 0.7 + n / 20]},
            "seconds": 1.5,
        }
        for n, (min_scale, task, dataset, metric) in enumerate(settings_)
    ]


@pytest.fixture()
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ---- the core readers ----------------------------------------------------------------------------------


@fuzz_settings(quick=60)
@given(data=st.data())
def test_safetensors_header(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.models.safetensors_io import iter_row_chunks, read_header

    path = workdir / "model.safetensors"
    path.write_bytes(fuzzing.mutate_safetensors(data, seeds.safetensors.read_bytes()))

    def read() -> None:
        header = read_header(path)
        for info in header.tensors.values():  # the byte ranges a smooth would map must be inside the file
            if info.shape and info.shape[0]:
                for _ in iter_row_chunks(path, info):
                    pass

    obeys_rule("safetensors", read, workdir)


@fuzz_settings(quick=30)
@given(data=st.data())
def test_safetensors_index(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.smoothing.checkpoint import INDEX_NAME, open_checkpoint

    model = workdir / "model"
    if not model.exists():
        fuzzing.copy_tree(seeds.model_sharded, model)
    text = (seeds.model_sharded / INDEX_NAME).read_text("utf-8")
    (model / INDEX_NAME).write_bytes(fuzzing.mutate_json_text(data, text))
    obeys_rule("safetensors index", lambda: open_checkpoint(model), workdir)


@fuzz_settings(quick=30)
@given(data=st.data())
def test_model_config_json(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.models.resolve import read_config_json
    from smoothie_cli.smoothing.checkpoint import embedding_layout, open_checkpoint

    model = workdir / "model"
    if not model.exists():
        fuzzing.copy_tree(seeds.model_single, model)
    names = set(open_checkpoint(seeds.model_single).weight_map)
    text = (seeds.model_single / "config.json").read_text("utf-8")
    (model / "config.json").write_bytes(fuzzing.mutate_json_text(data, text))

    def read() -> None:
        read_config_json(model)
        embedding_layout(model, names)

    obeys_rule("config.json", read, workdir)


@fuzz_settings(quick=40)
@given(data=st.data())
def test_tokenizer_json(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.config import SmoothieConfig
    from smoothie_cli.vocab.analysis import analyze_vocabulary
    from smoothie_cli.vocab.tokens import load_vocabulary

    text = json.dumps(seeds.tokenizer_spec, ensure_ascii=False)
    (workdir / "tokenizer.json").write_bytes(fuzzing.mutate_json_text(data, text))

    def read() -> None:  # and what the vocabulary feeds: identification and the exact n-gram analysis
        analyze_vocabulary("fuzz", load_vocabulary(workdir), SmoothieConfig())

    obeys_rule("tokenizer.json", read, workdir)


@fuzz_settings(quick=25)
@given(data=st.data())
def test_vocab_json(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.vocab.tokens import load_vocabulary

    if not (workdir / "merges.txt").exists():
        shutil.copy(seeds.vocab_dir / "merges.txt", workdir / "merges.txt")
    text = (seeds.vocab_dir / "vocab.json").read_text("utf-8")
    (workdir / "vocab.json").write_bytes(fuzzing.mutate_json_text(data, text))
    obeys_rule("vocab.json", lambda: load_vocabulary(workdir), workdir)


@fuzz_settings(quick=12, share=0.2)
@given(data=st.data())
def test_tokenizer_files_through_transformers(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.models.loading import load_tokenizer
    from smoothie_cli.models.resolve import resolve_model

    target = workdir / "tok"
    if not target.exists():
        fuzzing.copy_tree(seeds.tokenizer_dir, target)
    name = data.draw(st.sampled_from(["tokenizer.json", "tokenizer_config.json"]), label="file")
    text = (seeds.tokenizer_dir / name).read_text("utf-8")
    (target / name).write_bytes(fuzzing.mutate_json_text(data, text))
    obeys_rule(f"{name} (transformers)", lambda: load_tokenizer(resolve_model(str(target))), workdir)
    (target / name).write_text(text, "utf-8")


@fuzz_settings(quick=60)
@given(data=st.data())
def test_gguf(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.vocab.tokens import vocabulary_from_gguf

    blob = seeds.gguf.read_bytes()
    path = workdir / "model.gguf"
    path.write_bytes(fuzzing.mutate_bytes(data, blob, targets=fuzzing.gguf_length_offsets(blob)))
    obeys_rule("gguf", lambda: vocabulary_from_gguf(path), workdir)


@fuzz_settings(quick=40)
@given(data=st.data())
def test_analysis_json(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    import numpy as np

    from smoothie_cli.smoothing.scales import scales_from_file

    path = workdir / "analysis.json"
    path.write_bytes(fuzzing.mutate_json_text(data, seeds.analysis.read_text("utf-8")))

    def read() -> None:
        vector = scales_from_file(path, 0.5, 10.0).vector(len(seeds.tokenizer_spec["model"]["vocab"]))
        assert np.isfinite(vector).all() and (vector >= 0).all() and (vector <= 1).all()

    obeys_rule("analysis.json", read, workdir)


@fuzz_settings(quick=40)
@given(data=st.data())
def test_gate_json(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    import math

    from smoothie_cli.cautious.gate import CALIBRATION_FILE, GateCalibration

    text = (seeds.gate_dir / CALIBRATION_FILE).read_text("utf-8")
    (workdir / CALIBRATION_FILE).write_bytes(fuzzing.mutate_json_text(data, text))

    def read() -> None:
        calibration = GateCalibration.load(workdir)
        assert calibration is not None and math.isfinite(calibration.threshold)

    obeys_rule("gate.json", read, workdir)


@fuzz_settings(quick=40)
@given(data=st.data())
def test_runs_jsonl(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.sweep import load_runs

    path = workdir / "runs.jsonl"
    path.write_bytes(fuzzing.mutate_jsonl_text(data, seeds.runs.read_text("utf-8")))

    def read() -> None:
        finished, _ = load_runs(path)
        for record in finished.values():  # what run_sweep reads of each record
            assert all(metric in record["intervals"] for metric in record["scores"])
        load_runs(path)  # the file was cleaned: a second read finds nothing to skip
        assert not load_runs(path)[1]

    obeys_rule("runs.jsonl", read, workdir)


@fuzz_settings(quick=45)
@given(data=st.data())
def test_dataset_files(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.data.datasets import load_dataset

    kind = data.draw(st.sampled_from(sorted(seeds.datasets)), label="kind")
    text = seeds.datasets[kind].read_text("utf-8")
    if kind == "jsonl":
        damaged = fuzzing.mutate_jsonl_text(data, text)
    elif kind == "json":
        damaged = fuzzing.mutate_json_text(data, text)
    else:
        damaged = fuzzing.mutate_bytes(data, text.encode("utf-8"))
    path = workdir / f"data.{kind}"
    path.write_bytes(damaged)
    obeys_rule(f"dataset .{kind}", lambda: load_dataset(str(path)), workdir)


@fuzz_settings(quick=30)
@given(data=st.data())
def test_adapter_config(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.models.resolve import resolve_model

    text = (seeds.adapter_dir / "adapter_config.json").read_text("utf-8")
    (workdir / "adapter_config.json").write_bytes(fuzzing.mutate_json_text(data, text))
    obeys_rule("adapter_config.json", lambda: resolve_model(str(workdir)), workdir)


@fuzz_settings(quick=40)
@given(data=st.data())
def test_config_yaml(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.config import load_config

    path = workdir / "config.yaml"
    path.write_bytes(fuzzing.mutate_yaml_text(data, seeds.config_yaml.read_text("utf-8")))
    obeys_rule("config YAML", lambda: load_config(path), workdir)


@fuzz_settings(quick=40)
@given(data=st.data())
def test_grid_yaml(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.sweep import read_grid

    path = workdir / "grid.yaml"
    path.write_bytes(fuzzing.mutate_yaml_text(data, seeds.grid_yaml.read_text("utf-8")))
    obeys_rule("sweep grid YAML", lambda: read_grid(path), workdir)


@fuzz_settings(quick=30)
@given(data=st.data())
def test_smoothie_json(data: st.DataObject, seeds: Seeds, workdir: Path) -> None:
    from smoothie_cli.smoothing.checkpoint import RECORD_NAME, read_smoothing_record

    text = (seeds.smoothed / RECORD_NAME).read_text("utf-8")
    (workdir / RECORD_NAME).write_bytes(fuzzing.mutate_json_text(data, text))
    obeys_rule("smoothie.json", lambda: read_smoothing_record(workdir), workdir)


# ---- end to end through the CLI: exit 0, or exit 2 with one line and no output -------------------------

SMOOTH_TARGETS = ["model.safetensors", "config.json", "tokenizer.json", "analysis.json", "config.yaml"]


def cli_obeys_rule(fmt: str, cli: Any, argv: list[str], out: Path) -> None:
    fuzzing.COUNTS[fmt] += 1
    with time_limit(TIME_LIMIT_S * 3):
        code, _, err = cli(argv)
    assert code in (0, 2), f"{fmt}: exit {code}\n{err}"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp-")]
    assert not leftovers, f"{fmt}: temp files left: {leftovers}"
    if code == 2:
        fuzzing.REJECTED[fmt] += 1
        assert err.startswith("error:") and err.strip().count("\n") == 0 and "Traceback" not in err, err
        assert not out.exists(), f"{fmt}: exit 2 but {out} was written"
    elif out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()


@fuzz_settings(quick=10, share=0.05)
@given(data=st.data())
def test_cli_smooth_damaged_inputs(data: st.DataObject, seeds: Seeds, workdir: Path, cli: Any) -> None:
    model = workdir / "model"
    fuzzing.copy_tree(seeds.model_single, model)
    analysis, config, out = workdir / "analysis.json", workdir / "config.yaml", workdir / "out"
    shutil.copy(seeds.analysis, analysis)
    shutil.copy(seeds.config_yaml, config)
    target = data.draw(st.sampled_from(SMOOTH_TARGETS), label="damaged file")
    path = {"analysis.json": analysis, "config.yaml": config}.get(target, model / target)
    original = path.read_bytes()
    if target == "model.safetensors":
        damaged = fuzzing.mutate_safetensors(data, original)
    elif target == "config.yaml":
        damaged = fuzzing.mutate_yaml_text(data, original.decode("utf-8"))
    else:
        damaged = fuzzing.mutate_json_text(data, original.decode("utf-8"))
    path.write_bytes(damaged)
    argv = ["smooth", str(model), "-o", str(out), "--json"]
    argv += ["--analysis", str(analysis)] if target == "analysis.json" else []
    argv += ["-c", str(config)] if target == "config.yaml" else []
    cli_obeys_rule(f"smooth CLI: {target}", cli, argv, out)


@fuzz_settings(quick=10, share=0.05)
@given(data=st.data())
def test_cli_analyze_damaged_inputs(data: st.DataObject, seeds: Seeds, workdir: Path, cli: Any) -> None:
    out = workdir / "analysis-out"
    if data.draw(st.booleans(), label="gguf or tokenizer dir"):
        blob = seeds.gguf.read_bytes()
        path = workdir / "model.gguf"
        path.write_bytes(fuzzing.mutate_bytes(data, blob, targets=fuzzing.gguf_length_offsets(blob)))
        cli_obeys_rule("analyze CLI: .gguf", cli, ["analyze", str(path), "-o", str(out), "--json"], out)
        return
    target = workdir / "tok"
    fuzzing.copy_tree(seeds.tokenizer_dir, target)
    text = json.dumps(seeds.tokenizer_spec, ensure_ascii=False)
    (target / "tokenizer.json").write_bytes(fuzzing.mutate_json_text(data, text))
    cli_obeys_rule(
        "analyze CLI: tokenizer.json", cli, ["analyze", str(target), "-o", str(out), "--json"], out
    )


# ---- the bugs the fuzzer found, pinned ------------------------------------------------------------------


def test_huge_header_length_is_checked_before_reading(tmp_path: Path) -> None:
    from smoothie_cli.models.safetensors_io import read_header

    path = tmp_path / "model.safetensors"
    path.write_bytes((2**63 + 5).to_bytes(8, "little") + b"{}")  # was an OverflowError traceback
    with pytest.raises(SmoothieError, match="header claims"):
        read_header(path)


def test_overlapping_and_duplicate_tensors_are_refused(seeds: Seeds, tmp_path: Path) -> None:
    import struct

    from smoothie_cli.models.safetensors_io import read_header

    header, body = fuzzing.split_safetensors(seeds.safetensors.read_bytes())
    header["lm_head.weight"]["data_offsets"] = list(header["model.embed_tokens.weight"]["data_offsets"])
    header["lm_head.weight"]["dtype"], header["lm_head.weight"]["shape"] = "F32", [12, 4]
    text = json.dumps(header).encode()
    path = tmp_path / "overlap.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)
    with pytest.raises(SmoothieError, match="overlaps"):
        read_header(path)
    duplicate = fuzzing.dumps(fuzzing.split_safetensors(seeds.safetensors.read_bytes())[0], ()).encode()
    path.write_bytes(struct.pack("<Q", len(duplicate)) + duplicate + body)
    with pytest.raises(SmoothieError, match="appears twice"):
        read_header(path)


def test_gguf_array_bomb_fails_fast(seeds: Seeds, tmp_path: Path) -> None:
    """A token-type array claiming 2^62 items: gguf's reader would loop on it for hours."""
    import struct
    import time

    from smoothie_cli.vocab.tokens import vocabulary_from_gguf

    blob = seeds.gguf.read_bytes()
    key = b"tokenizer.ggml.token_type"
    at = blob.find(key) + len(key) + 8
    path = tmp_path / "bomb.gguf"
    path.write_bytes(blob[:at] + struct.pack("<Q", 2**62) + blob[at + 8 :])
    start = time.perf_counter()
    with pytest.raises(SmoothieError, match="not a readable GGUF"):
        vocabulary_from_gguf(path)
    assert time.perf_counter() - start < 2


def test_gate_threshold_must_be_finite(tmp_path: Path) -> None:
    from smoothie_cli.cautious.gate import GateCalibration

    for bad in ("NaN", "Infinity", "-Infinity"):  # NaN let every prompt through the gate
        (tmp_path / "gate.json").write_text(f'{{"threshold": {bad}, "max_over_refusal": 0.02}}')
        with pytest.raises(SmoothieError, match="is not a gate calibration"):
            GateCalibration.load(tmp_path)


def test_analysis_probability_must_be_a_probability(seeds: Seeds, tmp_path: Path) -> None:
    from smoothie_cli.smoothing.scales import scales_from_file

    document = json.loads(seeds.analysis.read_text("utf-8"))
    row = next(r for r in document["tokens"] if "weighted_prob" in r)
    for bad in (float("nan"), 2.0, -0.5):  # NaN gave NaN scales: a NaN lm_head row in the checkpoint
        row["weighted_prob"] = bad
        path = tmp_path / "analysis.json"
        path.write_text(json.dumps(document))
        with pytest.raises(SmoothieError, match="weighted_prob"):
            scales_from_file(path)


def test_config_json_not_json_is_one_line(seeds: Seeds, tmp_path: Path, cli: Any) -> None:
    model = fuzzing.copy_tree(seeds.model_single, tmp_path / "model")
    (model / "config.json").write_text("{not json")
    out = tmp_path / "out"
    code, _, err = cli(["smooth", str(model), "-o", str(out)])
    assert code == 2 and "config.json is not valid JSON" in err and not out.exists()


def test_error_quoting_markup_from_a_file_prints_as_text(seeds: Seeds, tmp_path: Path, cli: Any) -> None:
    """A dtype of "[/x]" quoted in the message crashed the error printer (Rich read it as markup)."""
    import struct

    model = fuzzing.copy_tree(seeds.model_single, tmp_path / "model")
    header, body = fuzzing.split_safetensors((model / "model.safetensors").read_bytes())
    next(v for k, v in header.items() if k != "__metadata__")["dtype"] = "[/x]"
    text = json.dumps(header).encode()
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + body)
    code, _, err = cli(["smooth", str(model), "-o", str(tmp_path / "out")])
    assert code == 2 and "unknown dtype '[/x]'" in err and err.count("\n") == 1


def test_smoothing_a_smoothed_checkpoint_says_so(seeds: Seeds, tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "twice"
    code, _, err = cli(["smooth", str(seeds.smoothed), "-o", str(out), "--json"])
    assert code == 0 and "was smoothed already (min_scale 0.5, smoothness 10.0)" in err
    record = json.loads((out / "smoothie.json").read_text("utf-8"))
    assert record["smoothed_before"] == {"base_model": str(seeds.model_single), "min_scale": 0.5,
                                         "smoothness": 10.0}  # fmt: skip


def test_sweep_log_with_a_cut_line_resumes_and_says_so(seeds: Seeds, tmp_path: Path) -> None:
    from smoothie_cli.sweep import load_runs

    path = tmp_path / "runs.jsonl"
    good = seeds.runs.read_text("utf-8")
    path.write_text(good + '{"key": "abc", "min_sca', "utf-8")  # killed mid-write
    finished, skipped = load_runs(path)
    assert len(finished) == 4 and skipped == [5]
    assert path.read_text("utf-8") == good  # cleaned, so the next result starts on its own line


def test_csv_row_longer_than_its_header(tmp_path: Path) -> None:
    from smoothie_cli.data.datasets import load_dataset

    path = tmp_path / "data.csv"
    path.write_text("prompt,label\nhello,safe,extra\n")  # was a TypeError (a None column name)
    with pytest.raises(SmoothieError, match="more cells than the header"):
        load_dataset(str(path))
