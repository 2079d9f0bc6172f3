"""`smoothie smooth`: write a checkpoint whose lm_head rows for the target script are scaled down."""

from __future__ import annotations

import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import ConfigOpt, JsonOpt, ModelArg
from smoothie_cli.errors import SmoothieError


def smooth(
    model: ModelArg = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output model directory (default: {output_path}/{model}_min…_smooth…)."
        ),
    ] = None,
    config: ConfigOpt = None,
    min_scale: Annotated[
        float | None, typer.Option("--min-scale", help="Scale of target tokens, 0..1.")
    ] = None,
    smoothness: Annotated[
        float | None, typer.Option("--smoothness", help="> 1; steeper for broken tokens.")
    ] = None,
    analysis: Annotated[
        Path | None,
        typer.Option("--analysis", help="analysis.json from `smoothie analyze -o` (else computed now)."),
    ] = None,
    window_size: Annotated[
        int | None, typer.Option("--window-size", help="N-gram window when computing.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip re-reading the output to check it.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scale the lm_head rows of target and broken tokens; write a complete, tie-safe model directory."""
    from smoothie_cli import ui
    from smoothie_cli.config import load_config, with_overrides
    from smoothie_cli.models import model_directory, resolve_model, tokenizer_location
    from smoothie_cli.smoothing.checkpoint import read_smoothing_record, smooth_checkpoint
    from smoothie_cli.smoothing.scales import check_parameters, scales_from_analysis
    from smoothie_cli.vocab.analysis import analysis_document
    from smoothie_cli.vocab.tokens import load_vocabulary

    cfg = load_config(config)
    if min_scale is not None or smoothness is not None:
        check_parameters(
            cfg.adjustment.min_scale if min_scale is None else min_scale,
            cfg.adjustment.smoothness if smoothness is None else smoothness,
        )
    cfg = with_overrides(
        cfg,
        adjustment={"min_scale": min_scale, "smoothness": smoothness},
        analysis={"window_size": window_size},
    )
    source = resolve_model(model or cfg.model.name)
    if source.kind == "peft":
        raise SmoothieError(
            f"'{source.spec}' is a PEFT adapter; smooth needs a safetensors checkpoint or a GGUF file "
            "(merge the adapter first)"
        )
    min_s, smooth_s = cfg.adjustment.min_scale, cfg.adjustment.smoothness
    target = output or Path(cfg.model.output_path) / f"{_short_name(source.spec)}_min{min_s}_smooth{smooth_s}"
    if source.kind == "gguf" and output is None:  # a file beside the others: {stem}_min…_smooth….gguf
        target = target.with_name(f"{source.path.stem}_min{min_s}_smooth{smooth_s}.gguf")
    with ui.progress_bar() as progress:
        vocab = load_vocabulary(tokenizer_location(source, progress))
        document = analysis_document(
            source.spec, vocab, cfg, analysis, explicit=config is not None or bool(window_size)
        )
        scales = scales_from_analysis(document, min_s, smooth_s)
        model_dir = model_directory(source, progress)
        command = "smoothie " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        provenance = {
            "base_model": source.spec,
            "min_scale": min_s,
            "smoothness": smooth_s,
            "analysis_sha256": scales.analysis_sha256,
            "vocab_sha256": scales.vocab_sha256,
            "analysis_config": document["config"],
            "target_tokens": scales.target_tokens,
            "scaled_broken_tokens": scales.scaled_broken_tokens,
            "command": command,
        }
        previous = read_smoothing_record(model_dir)
        if previous is not None:  # scaling twice multiplies the scales: say so, and keep the history
            ui.note(
                f"{source.spec} was smoothed already (min_scale {previous.min_scale}, smoothness "
                f"{previous.smoothness}); its lm_head rows are scaled again"
            )
            provenance["smoothed_before"] = previous.model_dump(
                include={"base_model", "min_scale", "smoothness"}
            )
        if source.kind == "gguf":  # llama.cpp / Ollama users: a GGUF out, its output rows scaled
            from smoothie_cli.smoothing.gguf_output import smooth_gguf

            gguf_record = {k: v for k, v in provenance.items() if not isinstance(v, dict)}
            written = smooth_gguf(source.path, target, scales, force=force, verify=not no_verify,
                                  metadata=gguf_record, progress=progress)  # fmt: skip
            summary = {
                "output": str(written.output),
                "model": source.spec,
                "target_tokens": scales.target_tokens,
                "scaled_tokens": written.rows_scaled,
                "scaled_broken_tokens": scales.scaled_broken_tokens,
                "min_scale": min_s,
                "smoothness": smooth_s,
                "untied": written.added_output,
                "lm_head": written.output_tensor,
                "output_type": written.output_type,
                "verified": written.verified,
                "bytes_written": written.bytes_written,
                "seconds": round(written.seconds, 3),
            }
            _render(summary, as_json)
            return
        card = _model_card(source.spec, provenance, document)
        try:
            result = smooth_checkpoint(
                model_dir, target, scales, force=force, verify=not no_verify, card=card,
                provenance=provenance, progress=progress,
            )  # fmt: skip
        except OSError as error:
            raise SmoothieError(
                f"cannot write {target}: {error.strerror or error}; free space or choose another -o"
            ) from None
    summary = {
        "output": str(result.output),
        "model": source.spec,
        "target_tokens": scales.target_tokens,
        "scaled_tokens": result.rows_scaled,
        "scaled_broken_tokens": scales.scaled_broken_tokens,
        "min_scale": min_s,
        "smoothness": smooth_s,
        "untied": result.untied,
        "lm_head": result.output_tensor,
        "rewritten_shard": result.rewritten_shard,
        "copied_shards": result.copied_shards,
        "verified": result.verified,
        "bytes_written": result.bytes_written,
        "seconds": round(result.seconds, 3),
    }
    _render(summary, as_json)


def _render(summary: dict[str, Any], as_json: bool) -> None:
    from smoothie_cli import ui

    if as_json:
        ui.print_json(summary)
        return
    rows = [[key.replace("_", " "), _cell(value)] for key, value in summary.items()]
    ui.show(ui.table("Smoothed checkpoint", ["", "value"], rows))


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _short_name(spec: str) -> str:
    name = spec.removeprefix("embedded:").rstrip("/")
    return Path(name).name or "model"


def _model_card(spec: str, provenance: dict[str, Any], document: dict[str, Any]) -> str:
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

# {_short_name(spec)} — smoothed with smoothie

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
