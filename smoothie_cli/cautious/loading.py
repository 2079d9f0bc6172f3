"""Load the target and draft models for speculation: int8 draft on CPU, tokenizer compatibility check."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.artifacts import gate_files
from smoothie_cli.cautious.decoder import CautiousDecoder, PromptSettings
from smoothie_cli.cautious.gate import GatePolicy, GateReader
from smoothie_cli.errors import BadValue, Conflict, SmoothieError, UnknownChoice
from smoothie_cli.generation.engine import Decoding, Engine
from smoothie_cli.progress import Progress, no_progress

QUANT_MODES = ("auto", "int8", "none")
TARGET_QUANT_MODES = ("none", "int8")
GATE_MODELS = ("full", "draft")


def quantize_draft(model: Any, mode: str, device: str) -> tuple[Any, str]:
    """The draft with int8 Linear layers (int8 weights, per-token int8 activations) when asked (auto: on
    CPU). Returns it and the mode used. Decoding on a CPU is memory-bound, so a quarter of the bytes per
    weight is most of the speed: 0.5B draft forward ≈ 16 ms int8 vs 133 ms float32 on 2 cores."""

    if mode not in QUANT_MODES:
        raise UnknownChoice(mode, QUANT_MODES, what="draft quantisation", setting="draft_quant")
    if mode == "auto":
        mode = "int8" if device == "cpu" else "none"
    if mode == "none":
        return model, mode
    if device != "cpu":
        raise Conflict(f"int8 runs on the CPU only; on {device} use none (or auto)", setting="draft_quant")
    from smoothie_cli.models.int8 import quantize_linears

    if hasattr(model, "merge_and_unload"):  # a PEFT adapter: fold it in so its layers are quantised too
        model = merge_and_quantize(model)
    model = quantize_linears(model.float())  # per-token activation scales: see models/int8.py
    return model.eval(), mode


def merge_and_quantize(model: Any) -> Any:
    """A PEFT model's base with each adapter layer merged and quantised in turn (not all merged first:
    merging writes every adapted float32 weight, 1.3 GB more at once on the 0.5B draft). Returns the base."""
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    from smoothie_cli.models.cpu import shared_weights
    from smoothie_cli.models.int8 import Int8Linear
    from smoothie_cli.models.pages import file_mappings, release

    base = model.get_base_model()
    mappings, shared = file_mappings(), shared_weights(base)
    for name, module in list(base.named_modules()):
        if not isinstance(module, BaseTunerLayer) or type(module.get_base_layer()) is not torch.nn.Linear:
            continue
        module.merge()
        dense = module.get_base_layer()
        parent_name, _, child = name.rpartition(".")
        setattr(base.get_submodule(parent_name) if parent_name else base, child, Int8Linear(dense.float()))
        if dense.weight.data_ptr() not in shared:
            release(dense.weight, mappings)
    if any(isinstance(m, BaseTunerLayer) for m in base.modules()):  # adapters on other layer types
        return model.merge_and_unload()
    return base


def load_int8_draft(source: Any, quant: str, progress: Progress = no_progress) -> Any:
    """The int8 draft, from a cache of its int8 tensors when one was written before (`models/int8.py`:
    `save_int8`), else loaded in float32, merged, quantised and cached. The cache is what makes a start
    cheap: no float32 copy of the draft (2 GB on the 0.5B) is read, merged or held, so `speculate` starts
    several seconds sooner at about 2 GB less peak memory. It is keyed by the draft's files (path, size,
    modification time) and the int8 scheme; a cache that cannot be read is rebuilt, one that cannot be
    written is skipped."""
    from transformers import AutoConfig

    from smoothie_cli.models import loading
    from smoothie_cli.models.int8 import load_int8, save_int8
    from smoothie_cli.models.resolve import concrete, model_directory

    # only drafts whose files never change in place are cached (embedded:NAME, a hub snapshot): a local
    # directory may be retrained under the same name, and each version would leave a 1 GB cache behind
    immutable = source.spec.startswith("embedded:") or source.kind == "hub"
    source = concrete(source, progress)
    base = model_directory(source, progress)
    path = _int8_cache_path(source, base) if immutable and base.is_dir() else None
    if path is not None and path.is_file():
        try:
            return load_int8(AutoConfig.from_pretrained(str(base)), path)
        except Exception:  # a damaged or stale cache (safetensors and torch raise many types): rebuild it
            path.unlink(missing_ok=True)
    model = loading.load_model(source, device="cpu", dtype="float32", progress=progress)
    model, _ = quantize_draft(model, quant, "cpu")
    if path is not None:
        with contextlib.suppress(OSError):  # a read-only cache directory: load this way next time too
            save_int8(model, path)
    return model


def _int8_cache_path(source: Any, base: Path) -> Path:
    import hashlib

    import torch

    from smoothie_cli.models.int8 import SCHEME
    from smoothie_cli.paths import smoothie_home

    digest = hashlib.sha256(f"{SCHEME} {torch.__version__}".encode())
    folders = [base] + ([source.path] if source.kind == "peft" else [])
    for folder in folders:
        for file in sorted(folder.iterdir()):
            if file.suffix in (".safetensors", ".json", ".bin") and file.is_file():
                info = file.stat()
                digest.update(f"{file.resolve()} {info.st_size} {info.st_mtime_ns}\n".encode())
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in source.spec)[-60:]
    return smoothie_home() / "int8-drafts" / f"{name}-{digest.hexdigest()[:16]}.safetensors"


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def same_tokenizer_files(target_tokenizer: Any, source: Any, progress: Progress = no_progress) -> bool:
    """Whether the draft's tokenizer files are byte for byte the target's (an embedded pair, a fine-tune
    of the target's own base): then they split text the same way without loading a second tokenizer
    (about a second on a CPU). False only means "not known": `check_same_tokenizer` decides."""
    from smoothie_cli.models.resolve import concrete, tokenizer_location

    mine = Path(getattr(target_tokenizer, "name_or_path", "") or "")
    theirs = tokenizer_location(concrete(source, progress), progress)
    if not (mine.is_dir() and theirs.is_dir()):
        return False
    pairs = [(mine / name, theirs / name) for name in TOKENIZER_FILES]
    if not all(a.is_file() and b.is_file() for a, b in pairs):
        return False
    return all(a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes() for a, b in pairs)


def check_same_tokenizer(target_tokenizer: Any, draft_tokenizer: Any, draft_spec: str) -> None:
    """Speculation compares token ids, so the draft must split text exactly as the target does."""
    target_vocab, draft_vocab = target_tokenizer.get_vocab(), draft_tokenizer.get_vocab()
    differing = sum(1 for token, index in target_vocab.items() if draft_vocab.get(token, index) != index)
    if differing:
        raise SmoothieError(
            f"the draft '{draft_spec}' has a different tokenizer from the target "
            f"({differing:,} tokens map to "
            "other ids); choose a draft of the same model family"
        )


@dataclass
class Draft:
    model: Any
    spec: str
    quant: str  # the quantisation used: int8 or none
    gate_threshold: float | None  # from the draft's gate.json; None: read the tag greedily
    gate_model: Any | None = None  # a full-precision copy that reads the tag of an int8 draft
    gate_probe: Any | None = None  # the GateProbe whose log-odds the threshold applies to (probe.py)

    def reader(
        self, tokenizer: Any, *, instruction: str | None = None, policy: GatePolicy | None = None
    ) -> GateReader:
        """The gate reader of this draft: the threshold, the reading model and the probe travel together,
        so a probe's threshold is never applied to tag margins by a caller that forgot the probe."""
        model = self.gate_model if self.gate_model is not None else self.model
        label = "float32 copy of the draft" if self.gate_model is not None else "the draft"
        return GateReader(model, tokenizer, threshold=self.gate_threshold, probe=self.gate_probe,
                          instruction=instruction, policy=policy or GatePolicy(), reader=label)  # fmt: skip


def gate_threshold(setting: str, calibrated: float | None) -> float | None:
    """The gate threshold setting: 'auto' (the draft's calibration if any, else greedy), 'greedy', or a
    number."""
    if setting == "auto":
        return calibrated
    if setting == "greedy":
        return None
    try:
        return float(setting)
    except ValueError:
        raise BadValue(f"must be auto, greedy or a number (a log-odds margin), not '{setting}'",
                       setting="gate_threshold") from None  # fmt: skip


def load_draft(
    spec: str,
    target_tokenizer: Any,
    device: str,
    dtype: str,
    quant: str,
    progress: Progress = no_progress,
    threshold: str = "auto",
    gate_model: str = "draft",
) -> Draft:
    """The draft model quantised as asked, checked against the target's tokenizer, with its gate threshold.

    `gate_model` draft (the default): the int8 draft reads its own tag, with the threshold calibrated on
    its own margins (gate-int8.json) when the draft has one — one model in memory, a gate prefill about 5×
    cheaper, test AUC within 0.0002 of float32's on the shipped draft; full: an int8 draft keeps a
    full-precision copy to read its tag (one more prefill per request and the float32 weights in
    memory), the reading gate.json was calibrated on."""
    import copy

    from smoothie_cli.models import loading, resolve_model
    from smoothie_cli.models.cpu import prepack_for_cpu

    if gate_model not in GATE_MODELS:
        raise UnknownChoice(gate_model, GATE_MODELS, what="gate model", setting="gate_model")
    source = resolve_model(spec)
    int8 = quant == "int8" or (quant == "auto" and device == "cpu")
    directory = source.location if source.kind in ("local", "peft") else None
    # the int8 draft reading its own tag: its scores sit elsewhere than float32's, so its own calibration
    # (gate-int8.json) applies when it has a current one (artifacts.gate_files)
    files = gate_files(directory, int8_reading=int8 and gate_model == "draft")
    calibration = files.calibration
    chosen = gate_threshold(threshold, calibration.threshold if calibration else None)
    # a number given by --gate-threshold applies to the probe too; greedy reads no probe
    probe = files.probe() if chosen is not None else None
    if not same_tokenizer_files(target_tokenizer, source, progress):
        check_same_tokenizer(target_tokenizer, loading.load_tokenizer(source, progress), source.spec)
    progress("loading draft", 0, 1)
    if int8 and gate_model == "draft" and device == "cpu":
        model = load_int8_draft(source, quant, progress)
        progress("loading draft", 1, 1)
        return Draft(model, source.spec, "int8", chosen, None, probe)
    # an int8 draft starts from float32 weights; otherwise it takes the target's dtype
    model = loading.load_model(source, device=device, dtype="float32" if int8 else dtype, progress=progress)
    reader = None
    if int8 and gate_model == "full":
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        reader, model = model.eval(), copy.deepcopy(model)
        prepack_for_cpu(reader)  # it only reads tags: oneDNN-packed float32 prefill is about 2× faster
    model, used = quantize_draft(model, quant, device)
    progress("loading draft", 1, 1)
    return Draft(model, source.spec, used, chosen, reader if used == "int8" else None, probe)


def load_for_speculation(
    target_spec: str,
    draft_spec: str | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    draft_quant: str = "auto",
    threshold: str = "auto",
    gate_model: str = "draft",
    progress: Progress = no_progress,
    target_quant: str = "none",
    target_engine: str = "auto",
    sequences: int = 1,
) -> tuple[Any, Any, Draft | None, dict[str, Any]]:
    """(target, tokenizer, draft or None, info) with the draft and the target quantised as asked, the target
    on `target_engine` (auto: llama.cpp on a CPU when it is installed and the target is a GGUF, else torch;
    `sequences`: answers llama.cpp holds at once)."""
    gate_threshold(threshold, None)  # a bad --gate-threshold fails before minutes of loading
    if gate_model not in GATE_MODELS:
        raise UnknownChoice(gate_model, GATE_MODELS, what="gate model", setting="gate_model")
    if target_quant not in TARGET_QUANT_MODES:
        raise UnknownChoice(
            target_quant, TARGET_QUANT_MODES, what="target quantisation", setting="target_quant"
        )
    from smoothie_cli.models import loading, resolve_model

    device = loading.resolve_device(device)
    if target_quant == "int8" and device != "cpu":
        raise Conflict(f"int8 runs on the CPU only; on {device} use none", setting="target_quant")
    target_source = resolve_model(target_spec)
    engine = target_engine_for(target_engine, target_source, device, target_quant)
    tokenizer = loading.load_tokenizer(target_source, progress)
    info: dict[str, Any] = {
        "target": target_source.spec,
        "target_engine": engine,
        "target_quant": "gguf" if engine == "llama.cpp" else target_quant,
        "draft": None,
        "draft_quant": None,
        "gate_threshold": None,
        "gate_reading": None,
        "device": device,
    }
    progress("loading target", 0, 1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        if engine == "llama.cpp":
            from smoothie_cli.models.llama_cpp import gguf_file, load_llama_cpp

            # 8,192 positions for one answer at a time; 2,048 more for each row of a continuous batch
            context = 8192 + 2048 * (sequences - 1)
            path = gguf_file(target_source, progress)  # converted here first if it must be
            # llama.cpp loads in C (ctypes lets go of the GIL) while the draft loads below: llama.cpp's
            # weight repacking and the draft's Python imports take a core each (a second of a CPU start)
            loading_target = pool.submit(load_llama_cpp, target_source, sequences=sequences, context=context,
                                         path=path)  # fmt: skip
        else:
            target = load_target(target_source, device, dtype, target_quant, progress)
        draft = None
        if draft_spec is not None:
            draft = load_draft(draft_spec, tokenizer, device, dtype, draft_quant, progress, threshold,
                               gate_model)  # fmt: skip
        if engine == "llama.cpp":
            target = loading_target.result()
    progress("loading target", 1, 1)
    if draft is None:
        return target, tokenizer, None, info
    reading = None if draft.gate_threshold is None else "probe" if draft.gate_probe is not None else "margin"
    info |= {"draft": draft.spec, "draft_quant": draft.quant, "gate_threshold": draft.gate_threshold,
             "gate_reading": reading}  # fmt: skip
    return target, tokenizer, draft, info


def target_engine_for(setting: str, source: Any, device: str, quant: str) -> str:
    """The engine the target decodes on: `torch`, or `llama.cpp` (the GGUF file itself, CPU). `auto` takes
    llama.cpp where it can run the target as asked — llama-cpp-python installed, a CPU, a GGUF target
    (embedded:NAME or a .gguf file), no other quantisation asked — because there it is several times faster
    and smaller than the dequantised float32 copy; torch otherwise."""
    from smoothie_cli.models import llama_cpp

    if setting not in llama_cpp.ENGINES:
        raise UnknownChoice(setting, llama_cpp.ENGINES, what="target engine", setting="target_engine")
    if setting == "torch":
        return "torch"
    if setting == "llama.cpp":
        if device != "cpu":
            raise Conflict(f"the llama.cpp engine runs on the CPU here; on {device} use torch",
                           setting="target_engine")  # fmt: skip
        if quant != "none":
            raise Conflict(f"llama.cpp decodes the GGUF's own quantisation, not {quant}; use none, or the "
                           "torch engine", setting="target_engine")  # fmt: skip
        llama_cpp.gguf_file_kind_check(source, setting="target_engine")
        llama_cpp.require(setting="target_engine")
        return "llama.cpp"
    usable = device == "cpu" and quant == "none" and source.kind in ("embedded", "gguf")
    return "llama.cpp" if usable and llama_cpp.available() else "torch"


def load_target(source: Any, device: str, dtype: str, quant: str, progress: Progress = no_progress) -> Any:
    """The target for inference: float32 oneDNN-packed on a CPU (`none`), or int8 Linear layers with
    per-token activation scales (`int8`, CPU only: models/int8.py, the draft's scheme), quantised one layer
    at a time from the mapped checkpoint so its float32 weights are never all resident at once
    (models/pages.py)."""
    from smoothie_cli.models import loading

    if quant == "none":
        return loading.load_model(source, device=device, dtype=dtype, progress=progress, inference=True)
    from smoothie_cli.models.int8 import quantize_linears

    model = loading.load_model(source, device=device, dtype="float32", progress=progress)
    if hasattr(model, "merge_and_unload"):  # a PEFT target: fold the adapter in so it is quantised too
        model = model.merge_and_unload()
    return quantize_linears(model, row_kernel=False).eval()  # one kernel whatever the row count


@dataclass(frozen=True)
class Smoothing:
    """Run-time smoothing of the target's vocabulary (none without `scales`: an analysis.json, or auto)."""

    scales: str | None = None
    min_scale: float = 0.5
    smoothness: float = 10.0
    mode: str = "scale"
    config: Path | None = None

    def processors(self, target: str) -> tuple[list[Any], dict[str, Any]]:
        """The logits processors for `target`'s vocabulary and a description of the setting."""
        from smoothie_cli.smoothing.runtime import analysis_for, setting_processors

        if self.scales is None:
            return setting_processors(None, None, self.min_scale, self.smoothness, self.mode)
        from smoothie_cli.config import load_config
        from smoothie_cli.models import resolve_model

        analysis = analysis_for(resolve_model(target), load_config(self.config), self.scales)
        return setting_processors(analysis, self.scales, self.min_scale, self.smoothness, self.mode)


@dataclass(frozen=True)
class CautiousSettings:
    """Everything `speculate` and `serve` load before answering, by concern."""

    target: str
    draft: str | None  # None: the target alone (no gate)
    device: str = "auto"
    dtype: str = "auto"
    draft_quant: str = "auto"
    target_quant: str = "none"  # none (float32, packed on a CPU) or int8
    target_engine: str = "auto"  # auto, torch or llama.cpp (models/llama_cpp.py)
    batch_rows: int = 0  # rows of a continuous batch the target holds besides one answer (serve's max batch)
    gate: bool = True  # False: the draft only drafts
    gate_threshold: str = "auto"  # auto, greedy or a number
    gate_model: str = "draft"  # which model reads an int8 draft's gate: draft or full
    instruction: str | None = None
    policy: GatePolicy = field(default_factory=GatePolicy)
    decoding: Decoding = field(default_factory=Decoding)
    prompt: PromptSettings = field(default_factory=PromptSettings)
    smoothing: Smoothing = field(default_factory=Smoothing)


# what the scheduler's measured costs depend on besides the machine (generation/costs.py)
COST_KEYS = ("target", "target_engine", "target_quant", "draft", "draft_quant", "device")


def open_cautious(
    settings: CautiousSettings, progress: Progress = no_progress
) -> tuple[CautiousDecoder, dict[str, Any]]:
    """The target, the draft and its gate reader loaded as `settings` say, in one decoder (its engine is what
    `serve` answers through), and what was loaded (info for results and responses)."""
    target, tokenizer, draft, info = load_for_speculation(
        settings.target, settings.draft, device=settings.device, dtype=settings.dtype,
        draft_quant=settings.draft_quant, threshold=settings.gate_threshold,
        gate_model=settings.gate_model if settings.gate else "draft",  # --no-gate: no float32 reader to keep
        progress=progress, target_quant=settings.target_quant, target_engine=settings.target_engine,
        sequences=1 + settings.batch_rows,
    )  # fmt: skip
    processors, setting = settings.smoothing.processors(settings.target)
    engine = Engine(target, tokenizer, draft.model if draft else None, processors=processors,
                    max_gamma=settings.decoding.max_gamma)  # fmt: skip
    reader = None
    if draft is not None and settings.gate:
        reader = draft.reader(tokenizer, instruction=settings.instruction, policy=settings.policy)
    engine.costs_identity = {key: info.get(key) for key in COST_KEYS} | {"dtype": settings.dtype}
    decoder = CautiousDecoder(engine, reader, settings.decoding, settings.prompt)
    info |= {"smoothing": setting, "draft_context": settings.prompt.draft_context if draft else None,
             "lookup": settings.decoding.lookup}  # fmt: skip
    return decoder, info
