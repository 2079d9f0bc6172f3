"""Analyse and smooth a model end to end: a model spec → its analysis (and files); settings → scales → a
verified checkpoint and its model card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smoothie_cli.errors import BadValue, CannotWrite
from smoothie_cli.progress import Progress, no_progress

if TYPE_CHECKING:
    from smoothie_cli.config import SmoothieConfig
    from smoothie_cli.vocab.analysis import Analysis


def analyze_model(
    spec: str | None, config: SmoothieConfig, output: Path | None = None, progress: Progress = no_progress
) -> tuple[Analysis, list[Path]]:
    """Analyse a model's vocabulary against `config` and, given an output directory, write analysis.json
    and the weighted_prob histogram there. Returns the analysis and the files written."""
    from smoothie_cli.models import resolve_model, tokenizer_location
    from smoothie_cli.vocab.analysis import analyze_vocabulary, write_analysis
    from smoothie_cli.vocab.tokens import load_vocabulary

    source = resolve_model(spec or config.model.name)
    vocab = load_vocabulary(tokenizer_location(source, progress))
    result = analyze_vocabulary(source.spec, vocab, config)
    return result, [] if output is None else write_analysis(result, output)


@dataclass(frozen=True)
class SmoothSettings:
    """One `smooth` run. None: the value of the config file (or its defaults)."""

    model: str | None = None
    output: Path | None = None  # None: {output_path}/{model}_min…_smooth…
    config: Path | None = None
    min_scale: float | None = None
    smoothness: float | None = None
    analysis: Path | None = None  # an analysis.json (else computed now)
    window_size: int | None = None
    force: bool = False
    verify: bool = True
    command: str = ""  # how it was asked for, recorded in the provenance and the card


def smooth_model(
    settings: SmoothSettings, progress: Progress = no_progress, warn: Callable[[str], None] = lambda m: None
) -> dict[str, Any]:
    """Scale the lm_head rows of the target and broken tokens and write a complete, verified model directory
    with smoothie.json (provenance) and a model card. Returns a summary of what was written."""
    from smoothie_cli.config import load_config, with_overrides
    from smoothie_cli.models import model_directory, resolve_model, tokenizer_location
    from smoothie_cli.smoothing.checkpoint import read_smoothing_record, smooth_checkpoint
    from smoothie_cli.smoothing.scales import check_parameters, scales_from_analysis
    from smoothie_cli.vocab.analysis import analysis_document
    from smoothie_cli.vocab.tokens import load_vocabulary

    cfg = load_config(settings.config)
    if settings.min_scale is not None or settings.smoothness is not None:
        check_parameters(
            cfg.adjustment.min_scale if settings.min_scale is None else settings.min_scale,
            cfg.adjustment.smoothness if settings.smoothness is None else settings.smoothness,
        )
    cfg = with_overrides(cfg, adjustment={"min_scale": settings.min_scale, "smoothness": settings.smoothness},
                         analysis={"window_size": settings.window_size})  # fmt: skip
    source = resolve_model(settings.model or cfg.model.name)
    if source.kind in ("gguf", "peft"):
        raise BadValue(
            f"'{source.spec}' is a {'GGUF file' if source.kind == 'gguf' else 'PEFT adapter'}; smoothing "
            "needs a safetensors checkpoint (merge the adapter, or convert the GGUF to a Hugging Face "
            "directory)"
        )
    min_s, smooth_s = cfg.adjustment.min_scale, cfg.adjustment.smoothness
    target = (
        settings.output
        or Path(cfg.model.output_path) / f"{short_name(source.spec)}_min{min_s}_smooth{smooth_s}"
    )
    vocab = load_vocabulary(tokenizer_location(source, progress))
    explicit = settings.config is not None or bool(settings.window_size)
    document = analysis_document(source.spec, vocab, cfg, settings.analysis, explicit=explicit)
    scales = scales_from_analysis(document, min_s, smooth_s)
    model_dir = model_directory(source, progress)
    provenance = {
        "base_model": source.spec, "min_scale": min_s, "smoothness": smooth_s,
        "analysis_sha256": scales.analysis_sha256, "vocab_sha256": scales.vocab_sha256,
        "analysis_config": document["config"], "target_tokens": scales.target_tokens,
        "scaled_broken_tokens": scales.scaled_broken_tokens, "command": settings.command,
    }  # fmt: skip
    previous = read_smoothing_record(model_dir)
    if previous is not None:  # scaling twice multiplies the scales: say so, and keep the history
        warn(f"{source.spec} was smoothed already (min_scale {previous.min_scale}, smoothness "
             f"{previous.smoothness}); its lm_head rows are scaled again")  # fmt: skip
        provenance["smoothed_before"] = previous.model_dump(include={"base_model", "min_scale", "smoothness"})
    try:
        result = smooth_checkpoint(
            model_dir, target, scales, force=settings.force, verify=settings.verify,
            card=model_card(source.spec, provenance, document), provenance=provenance, progress=progress,
        )  # fmt: skip
    except OSError as error:
        raise CannotWrite(f"cannot write {target}: {error.strerror or error}; free space or choose another "
                          "output directory", setting="output") from None  # fmt: skip
    return {
        "output": str(result.output), "model": source.spec, "target_tokens": scales.target_tokens,
        "scaled_tokens": result.rows_scaled, "scaled_broken_tokens": scales.scaled_broken_tokens,
        "min_scale": min_s, "smoothness": smooth_s, "untied": result.untied, "lm_head": result.output_tensor,
        "rewritten_shard": result.rewritten_shard, "copied_shards": result.copied_shards,
        "verified": result.verified, "bytes_written": result.bytes_written,
        "seconds": round(result.seconds, 3),
    }  # fmt: skip


def short_name(spec: str) -> str:
    name = spec.removeprefix("embedded:").rstrip("/")
    return Path(name).name or "model"


def model_card(spec: str, provenance: dict[str, Any], document: dict[str, Any]) -> str:
    """README.md for a smoothed model: what was scaled, by how much, from which analysis, and how."""
    targets = ", ".join(
        f"{t['name']} (U+{t['range'][0]:04X}–U+{t['range'][1]:04X})"
        for t in document["config"]["unicode_targets"]
    )
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    analysis = document["config"]["analysis"]
    base = spec if not spec.startswith("embedded:") else spec.removeprefix("embedded:")
    return f"""---
base_model: {base}
tags:
- smoothie
- language-smoothing
---

# {short_name(spec)} — smoothed with smoothie

The `lm_head` rows of the tokens that write the target script are scaled down (Smoothie Qwen,
arXiv 2507.05686), so the model stops drifting into that script. All other weights are the base model's,
and the input embeddings are unchanged even where the base model tied them to `lm_head`.

| | |
|---|---|
| base model | `{spec}` |
| min_scale | {provenance["min_scale"]} |
| smoothness | {provenance["smoothness"]} |
| target tokens (scaled by min_scale) | {provenance["target_tokens"]:,} |
| broken tokens scaled by the formula | {provenance["scaled_broken_tokens"]:,} |
| n-gram window / direction | {analysis["window_size"]} / {analysis["direction"]} |
| target scripts | {targets} |
| analysis sha256 | `{provenance["analysis_sha256"][:16]}…` |
| date | {date} |

Made with:

```
{provenance["command"]}
```

`smoothie.json` lists every scaled row with its factor.
"""
