"""One loaded model, reused across tasks and settings (sweeps swap scales, never reload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smoothie_cli.config import SmoothieConfig
from smoothie_cli.evaluation.tasks import EvalContext
from smoothie_cli.generation.batched import ModelGenerator
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.models import ModelSource, resolve_model
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
        from smoothie_cli.smoothing.runtime import analysis_for

        if self._analysis is None:
            self._analysis = analysis_for(self.source, self.config, path)
        return self._analysis

    def apply_setting(
        self, scales: str | None, min_scale: float = 0.5, smoothness: float = 10.0, mode: str = "scale"
    ) -> dict[str, Any]:
        """Steer generation and scoring with run-time scales (None: the model as is). Returns the setting."""
        from smoothie_cli.smoothing.runtime import setting_processors

        analysis = self.analysis(scales) if scales is not None else None
        processors, setting = setting_processors(analysis, scales, min_scale, smoothness, mode)
        self.context.logits_processors = list(processors)
        generator = self.context.generator
        if isinstance(generator, ModelGenerator):
            generator.logits_processors = list(processors)
        return setting

    def use_draft(
        self, draft: str, quant: str, max_new_tokens: int, progress: Progress, strategy: str = "auto"
    ) -> dict[str, Any]:
        """Generate through cautious decoding: this session's model is the target, `draft` gates and drafts,
        through the same logits processors as the target alone (smoothing scales included). Scoring tasks
        (mc, toxicity) still read the session's model."""
        from smoothie_cli.cautious.decoder import CautiousDecoder, CautiousGenerator
        from smoothie_cli.cautious.loading import load_draft

        device = str(next(self.context.model.parameters()).device)
        loaded = load_draft(draft, self.context.tokenizer, device, "auto", quant, progress)
        generator = self.context.generator
        decoder = CautiousDecoder(
            self.context.model, self.context.tokenizer, loaded.model,
            **loaded.gate_options(),
            processors=self.context.logits_processors,
            sampling=generator.sampling if isinstance(generator, ModelGenerator) else None,
        )  # fmt: skip
        self.context.generator = CautiousGenerator(decoder, max_new_tokens=max_new_tokens, strategy=strategy)
        return {"draft": loaded.spec, "draft_quant": loaded.quant, "strategy": strategy}


def open_session(
    spec: str | None,
    config: SmoothieConfig,
    *,
    device: str = "auto",
    dtype: str = "auto",
    max_new_tokens: int = 128,
    batch_size: int = 8,
    sampling: SamplingConfig | None = None,
    progress: Progress = no_progress,
) -> Session:
    """Resolve and load the model once; build the evaluation context around it (answers are greedy unless
    `sampling` says otherwise)."""
    from smoothie_cli.models import loading

    source = resolve_model(spec)
    tokenizer = loading.load_tokenizer(source, progress)
    progress("loading model", 0, 1)
    model = loading.load_model(source, device=device, dtype=dtype, progress=progress, inference=True)
    progress("loading model", 1, 1)
    generator = ModelGenerator(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               sampling=sampling or SamplingConfig())  # fmt: skip
    context = EvalContext(model, tokenizer, generator, TargetScript(config.blocks()), batch_size=batch_size)
    if source.kind in ("local", "peft"):  # a calibrated draft: the toxicity task reads its gate that way
        from smoothie_cli.cautious.gate import GateCalibration

        calibration = GateCalibration.load(source.location)
        if calibration is not None:
            from smoothie_cli.cautious.probe import probe_for

            context.options["gate_threshold"] = calibration.threshold
            context.options["gate_probe"] = probe_for(calibration, source.location)
    return Session(source, config, context)
