"""One loaded model, reused across tasks and settings (sweeps swap scales, never reload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smoothie_cli.config import SmoothieConfig
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.generation import ModelGenerator
from smoothie_cli.evaluation.tasks import EvalContext
from smoothie_cli.models import ModelSource, resolve_model, tokenizer_location
from smoothie_cli.progress import Progress, no_progress
from smoothie_cli.vocab.scripts import TargetScript


@dataclass
class Session:
    source: ModelSource
    config: SmoothieConfig
    context: EvalContext
    _analysis: dict[str, Any] | None = None

    def analysis(self, path: str) -> dict[str, Any]:
        """The analysis for this model: from an analysis.json, or computed now ('auto'); cached."""
        from pathlib import Path

        from smoothie_cli.vocab.analysis import analysis_document
        from smoothie_cli.vocab.tokens import load_vocabulary

        if self._analysis is None:
            vocab = load_vocabulary(tokenizer_location(self.source))
            self._analysis = analysis_document(
                self.source.spec, vocab, self.config, None if path == "auto" else Path(path)
            )
        return self._analysis

    def apply_setting(
        self, scales: str | None, min_scale: float = 0.5, smoothness: float = 10.0, mode: str = "scale"
    ) -> dict[str, Any]:
        """Steer generation and scoring with run-time scales (None: the model as is). Returns the setting."""
        from smoothie_cli.smoothing.runtime import TokenScaleLogitsProcessor
        from smoothie_cli.smoothing.scales import check_parameters, scales_from_analysis

        processors: list[Any] = []
        setting: dict[str, Any] = {"label": "base", "scales": None}
        if scales is not None:
            if mode not in ("scale", "bias"):
                raise SmoothieError(f"--mode '{mode}' is not scale or bias")
            check_parameters(min_scale, smoothness)
            token_scales = scales_from_analysis(self.analysis(scales), min_scale, smoothness)
            processors = [TokenScaleLogitsProcessor(token_scales, mode=mode)]  # type: ignore[arg-type]
            setting = {
                "label": f"min_scale {min_scale}, smoothness {smoothness}, {mode}",
                "scales": scales,
                "min_scale": min_scale,
                "smoothness": smoothness,
                "mode": mode,
            }
        self.context.logits_processors = processors
        generator = self.context.generator
        if isinstance(generator, ModelGenerator):
            generator.logits_processors = processors
        return setting

    def use_draft(self, draft: str, quant: str, max_new_tokens: int, progress: Progress) -> dict[str, Any]:
        """Generate through cautious speculation: this session's model is the target, `draft` gates and
        drafts. Scoring tasks (mc, toxicity) still read the session's model."""
        from smoothie_cli.cautious.loading import load_draft
        from smoothie_cli.cautious.speculative import CautiousDecoder, CautiousGenerator

        device = str(next(self.context.model.parameters()).device)
        loaded = load_draft(draft, self.context.tokenizer, device, "auto", quant, progress)
        decoder = CautiousDecoder(
            self.context.model, self.context.tokenizer, loaded.model,
            gate_threshold=loaded.gate_threshold, gate_model=loaded.gate_model,
        )  # fmt: skip
        self.context.generator = CautiousGenerator(decoder, max_new_tokens=max_new_tokens)
        return {"label": f"cautious speculation, draft {loaded.spec} ({loaded.quant})", "scales": None,
                "draft": loaded.spec, "draft_quant": loaded.quant}  # fmt: skip


def open_session(
    spec: str | None,
    config: SmoothieConfig,
    *,
    device: str = "auto",
    dtype: str = "auto",
    max_new_tokens: int = 128,
    batch_size: int = 8,
    progress: Progress = no_progress,
) -> Session:
    """Resolve and load the model once; build the evaluation context around it."""
    from smoothie_cli.models import loading

    source = resolve_model(spec)
    tokenizer = loading.load_tokenizer(source, progress)
    progress("loading model", 0, 1)
    model = loading.load_model(source, device=device, dtype=dtype, progress=progress)
    progress("loading model", 1, 1)
    generator = ModelGenerator(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size)
    context = EvalContext(model, tokenizer, generator, TargetScript(config.blocks()), batch_size=batch_size)
    if source.kind in ("local", "peft"):  # a calibrated draft: the toxicity task reads its gate that way
        from smoothie_cli.cautious.gate import GateCalibration

        calibration = GateCalibration.load(source.location)
        if calibration is not None:
            context.options["gate_threshold"] = calibration.threshold
    return Session(source, config, context)
