"""The gate read by a linear probe on the draft's own hidden states, not by the margin of one tag token.

The fine-tuned tag margin log P(<Toc>) − log P(<Safe>) is one direction of the last hidden state, trained on
2,000 prompts. A logistic probe on two middle layers separates the moderation set better (cross-fitted on the
train split: AUC 0.987 against the margin's 0.971 on the calibration prompts; README): the mean hidden state
after decoder layer 10 over the user's tokens (what the request is about) and the hidden state after layer 14
at the tag position (what the model is about to answer). Both layers sit below the LoRA (top 8 of 24
layers), so the probe reads the base model's features: they do not depend on the adapter, training rows
are not memorised there, and the probe can be fitted and cross-fitted on every train prompt in seconds
once the features are read.

Calibration stays honest by cross-fitting: the train split (fit and calibration rows) is cut into `FOLDS`
folds by a hash of the text; each row is scored by the probe fitted without its fold, and the threshold is
chosen on those out-of-fold scores with the Clopper-Pearson bound (gate.calibrate) — ~1,500 benign prompts
instead of the ~360 of the calibration rows alone, so the bound costs less recall. The shipped probe is fitted
on all rows; the fold probes are kept in the file, so the out-of-fold scores (and a threshold for another
over-refusal target) can be recomputed from the features without refitting. The int8 draft gets a probe of
its own (`PROBE_INT8_FILE`, fitted the same way on its own features by quantize.py).

The probe is hand-written logistic regression (L-BFGS in torch) rather than scikit-learn: a few thousand
rows × 1,792 features fit in about a second, and torch is already loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smoothie_cli.cautious.gate import DEFAULT_MAX_OVER_REFUSAL, GateCalibration, calibrate
from smoothie_cli.cautious.prompts import MODERATION_INSTRUCTION, instruction_prefix
from smoothie_cli.errors import SmoothieError
from smoothie_cli.progress import Progress, no_progress

PROBE_FILE = "gate-probe.safetensors"  # in an adapter directory, beside gate.json
# the int8 draft's own probe, beside gate-int8.json: dynamic int8 quantisation moves the middle layers' states
# enough that a probe fitted on float32 features reads them badly (out-of-fold AUPRC 0.958 vs 0.987), so the
# int8 reading gets a probe fitted, cross-fitted and calibrated on its own features
PROBE_INT8_FILE = "gate-probe-int8.safetensors"
MEAN_LAYER = 10  # mean over the user's tokens of the hidden state after this decoder layer (of 24)
LAST_LAYER = 14  # the hidden state after this decoder layer (of 24) at the tag position
DEPTH = 24  # the 0.5B's layers, where the two were chosen: other depths take the same fractions
L2 = 0.03  # on standardised features; chosen by out-of-fold F1 on the train split (README)
FOLDS = 5


def probe_layers(model: Any) -> tuple[int, int]:
    """The probe's two layers for `model`: 10 and 14 of the 0.5B's 24, the same fractions of another depth."""
    total = len(decoder_layers(model))
    return tuple(max(1, round(total * n / DEPTH)) for n in (MEAN_LAYER, LAST_LAYER))  # type: ignore[return-value]


def fold_of(prompt: str, folds: int = FOLDS) -> int:
    """A prompt's cross-fitting fold, from a hash of its text (stable across runs and machines)."""
    digest = hashlib.sha256(b"probe-fold:" + prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % folds


@dataclass
class LinearProbe:
    """A standardised logistic regression: score = ((x − center) / scale) · weight + bias (log-odds)."""

    center: Any
    scale: Any
    weight: Any
    bias: Any

    def __call__(self, features: Any) -> Any:
        return ((features.float() - self.center) / self.scale) @ self.weight + self.bias


def fit_probe(features: Any, toxic: Any, l2: float = L2) -> LinearProbe:
    """Logistic regression with an L2 penalty (`l2`/2 · |w|², on the mean loss), fitted by L-BFGS."""
    import torch

    x, y = features.float(), toxic.float()
    center, scale = x.mean(0), x.std(0) + 1e-4
    z = (x - center) / scale
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ weight + bias, y)
        loss = loss + l2 * (weight @ weight) / 2
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LinearProbe(center, scale, weight.detach(), bias.detach())


@dataclass
class GateProbe:
    """The shipped probe (fitted on every row) and its fold probes (each without one fold)."""

    mean_layer: int
    last_layer: int
    probe: LinearProbe
    folds: list[LinearProbe]

    def scores(self, features: Any) -> list[float]:
        return [float(s) for s in self.probe(features)]

    def out_of_fold(self, features: Any, prompts: Sequence[str]) -> list[float]:
        """Each row scored by the fold probe that did not see it (the rows must be those it was fitted on)."""
        return [float(self.folds[fold_of(p, len(self.folds))](features[i : i + 1])[0])
                for i, p in enumerate(prompts)]  # fmt: skip

    def save(self, directory: Path, name: str = PROBE_FILE) -> None:
        import torch
        from safetensors.torch import save_file

        tensors: dict[str, Any] = {}
        for key, probe in [("probe", self.probe), *((f"fold{i}", f) for i, f in enumerate(self.folds))]:
            for part in ("center", "scale", "weight", "bias"):
                tensors[f"{key}.{part}"] = getattr(probe, part).float().contiguous()
        tensors["layers"] = torch.tensor([self.mean_layer, self.last_layer])
        path = Path(directory) / name
        partial = path.with_name(f".{name}.partial")  # written whole, then renamed: never half a probe
        save_file(tensors, str(partial), metadata={"folds": str(len(self.folds))})
        partial.chmod(0o644)  # package data when shipped: readable by every user of an install
        partial.replace(path)

    @classmethod
    def load(cls, directory: str | Path, name: str = PROBE_FILE) -> GateProbe:
        from safetensors.torch import load_file

        from smoothie_cli.jsonfile import first_line

        path = Path(directory) / name
        if not path.is_file():
            raise SmoothieError(f"{directory} has a probe gate.json but no {name}; re-run finetune-draft")
        try:
            tensors = load_file(str(path))
            layers = [int(v) for v in tensors["layers"]]

            def part(name: str) -> LinearProbe:
                return LinearProbe(*(tensors[f"{name}.{p}"] for p in ("center", "scale", "weight", "bias")))

            folds = [part(f"fold{i}") for i in range(sum(k.endswith(".bias") for k in tensors) - 1)]
            probe = cls(layers[0], layers[1], part("probe"), folds)
            width = probe.probe.weight.shape[0]
            if any(t.shape[0] != width for f in [probe.probe, *folds] for t in (f.center, f.scale, f.weight)):
                raise ValueError("tensors of different widths")
        except Exception as error:  # safetensors raises several types on a damaged file
            raise SmoothieError(
                f"{path} is not a gate probe ({first_line(error)}); re-run finetune-draft, or delete "
                "gate.json to read the gate greedily"
            ) from None
        return probe


def probe_for(calibration: Any, directory: str | Path, name: str = PROBE_FILE) -> GateProbe | None:
    """The probe a calibration's threshold applies to (`name` in `directory`), or None for a margin gate."""
    if calibration is None or calibration.reading != "probe":
        return None
    return GateProbe.load(directory, name)


def fit_gate_probe(
    features: Any,
    prompts: Sequence[str],
    labels: Sequence[str],
    layers: tuple[int, int] = (MEAN_LAYER, LAST_LAYER),
) -> GateProbe:
    """The probe on every row, and one per fold without it (for out-of-fold scores); `layers`: where the
    features were read."""
    import torch

    toxic = torch.tensor([label == "toxic" for label in labels])
    fold = torch.tensor([fold_of(p) for p in prompts])
    folds = [fit_probe(features[fold != k], toxic[fold != k]) for k in range(FOLDS)]
    return GateProbe(*layers, fit_probe(features, toxic), folds)


# ---- reading the features ------------------------------------------------------------------------------


class _Enough(Exception):
    """Raised by the last hook the probe needs: the layers above it need not run."""


def decoder_layers(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model.layers


@contextmanager
def capture(model: Any, mean_layer: int, last_layer: int, stop: bool = False) -> Iterator[dict[int, list]]:
    """Record the hidden states after decoder layers `mean_layer` and `last_layer` (1-based, as in
    `output_hidden_states`) of every forward; with `stop`, end each forward after the higher one (a
    forward that only reads features skips the layers above, ~40% of its cost on the 0.5B)."""
    layers = decoder_layers(model)
    seen: dict[int, list] = {mean_layer: [], last_layer: []}
    top = max(mean_layer, last_layer)

    def hook(number: int) -> Any:
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            seen[number].append((output[0] if isinstance(output, tuple) else output).detach().float())
            if stop and number == top:
                raise _Enough

        return record

    handles = [layers[n - 1].register_forward_hook(hook(n)) for n in seen]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def features_of(mean_states: Any, last_states: Any, user_positions: int) -> Any:
    """One prompt's features from its hidden states [T, H] at the two layers: the mean of the last
    `user_positions` rows of the first (the user's tokens and the tag prefix), the last row of the second."""
    import torch

    return torch.cat([mean_states[-user_positions:].mean(0), last_states[-1]])


def probe_features(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    probe_layers: tuple[int, int] = (MEAN_LAYER, LAST_LAYER),
    *,
    instruction: str = MODERATION_INSTRUCTION,
    batch_size: int = 64,
    token_budget: int = 1024,
    progress: Progress = no_progress,
    description: str = "reading the draft's features",
) -> Any:
    """[N, 2H] features of each prompt's draft prompt (+ the tags' shared tokens), batched as tag_margins."""
    import torch

    from smoothie_cli.cautious.gate import _prompt_batches, tag_tokens

    tags = tag_tokens(tokenizer)
    prefix = len(instruction_prefix(tokenizer, instruction))
    mean_layer, last_layer = probe_layers
    rows: list[Any] = [None] * len(prompts)
    for group, ids, mask, cache in _prompt_batches(
        model, tokenizer, prompts, instruction, tags.shared, batch_size, token_budget, progress, description
    ):
        device = next(model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        stopped = capture(model, mean_layer, last_layer, stop=True)
        with stopped as seen, torch.inference_mode(), suppress(_Enough):
            model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                  use_cache=cache is not None, logits_to_keep=1)  # fmt: skip
        cut = mask.shape[1] - ids.shape[1]  # the shared prefix's columns, when it was cached
        real = mask[:, cut:].sum(-1).tolist()
        for row, i in enumerate(group):
            user = int(real[row]) if cut else int(real[row]) - prefix  # left padding: the last columns
            rows[i] = features_of(seen[mean_layer][0][row], seen[last_layer][0][row], max(user, 1)).cpu()
    return torch.stack(rows) if rows else torch.zeros(0)


def probe_scores(
    model: Any, tokenizer: Any, prompts: Sequence[str], probe: GateProbe, **kwargs: Any
) -> list[float]:
    """The probe's log-odds that each prompt is toxic (the gate's score with a probe calibration)."""
    features = probe_features(model, tokenizer, prompts, (probe.mean_layer, probe.last_layer), **kwargs)
    return probe.scores(features)


# ---- fitting and calibrating a draft's probe -------------------------------------------------------------


def calibrate_probe(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Any],
    *,
    instruction: str = MODERATION_INSTRUCTION,
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL,
    progress: Progress = no_progress,
) -> tuple[GateProbe, GateCalibration]:
    """Fit the probe on `examples` (the whole train split: fit and calibration rows) and choose its
    threshold on the out-of-fold scores. Returns (probe, GateCalibration with reading "probe")."""
    layers = probe_layers(model)
    check_layers_below_adapter(model, layers)
    prompts = [e.prompt for e in examples]
    labels = [e.label or "safe" for e in examples]
    features = probe_features(model, tokenizer, prompts, layers, instruction=instruction, progress=progress,
                              description="reading features for the gate probe")  # fmt: skip
    return fit_and_calibrate(features, prompts, labels, layers, max_over_refusal)


def fit_and_calibrate(
    features: Any,
    prompts: Sequence[str],
    labels: Sequence[str],
    layers: tuple[int, int],
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL,
) -> tuple[GateProbe, GateCalibration]:
    """The probe on these rows' features and its threshold, chosen on their out-of-fold scores."""
    probe = fit_gate_probe(features, prompts, labels, layers)
    calibration = calibrate(probe.out_of_fold(features, prompts), labels, max_over_refusal, reading="probe")
    return probe, calibration


def check_layers_below_adapter(model: Any, layers: tuple[int, int] | None = None) -> None:
    """The probe's layers must be ones the LoRA leaves alone: there the train rows' features are the base
    model's, not memorised, so out-of-fold scores are honest."""
    config = getattr(model, "peft_config", {}).get("default")
    if config is None:
        return
    total = len(decoder_layers(model))
    layers = layers or probe_layers(model)
    adapted = config.layers_to_transform  # 0-based indices; the probe's layers count from 1
    lowest = 0 if adapted is None else adapted if isinstance(adapted, int) else min(adapted)
    if max(layers) > lowest:
        raise SmoothieError(
            f"the gate probe reads layers {layers[0]} and {layers[1]}, but the LoRA adapts layers from "
            f"{lowest + 1}; use --layers {max(total - max(layers), 1)} or fewer, or --gate-reading margin"
        )


def add_probe(directory: Path, progress: Progress = no_progress) -> GateCalibration:
    """Fit and calibrate the gate probe of the trained draft in `directory` on the moderation train split,
    and write gate-probe.safetensors and gate.json (reading "probe") there. finetune-draft does this itself;
    this adds a probe to a draft trained before it did."""
    from smoothie_cli.data.moderation import moderation_dataset
    from smoothie_cli.models import loading, resolve_model
    from smoothie_cli.models.atomic import write_text_atomic

    source = resolve_model(str(directory))
    tokenizer = loading.load_tokenizer(source, progress)
    model = loading.load_model(source, device="cpu", dtype="float32", progress=progress)
    probe, calibration = calibrate_probe(model, tokenizer, moderation_dataset("train").examples,
                                         progress=progress)  # fmt: skip
    import json
    from dataclasses import asdict

    probe.save(Path(directory))
    calibration.save(Path(directory))
    metrics = Path(directory) / "metrics.json"
    if metrics.is_file():  # the training report: its calibrated row was the margin threshold's
        report = json.loads(metrics.read_text())
        report["calibration"] = asdict(calibration)
        report.setdefault("metrics", {})["calibrated"] = None
        report["probe_added"] = "python -m smoothie_cli.cautious.probe (after training)"
        write_text_atomic(metrics, json.dumps(report, indent=2))
    return calibration


if __name__ == "__main__":  # python -m smoothie_cli.cautious.probe DRAFT_DIR
    import json
    import sys
    from dataclasses import asdict

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m smoothie_cli.cautious.probe DRAFT_DIR")
    print(json.dumps(asdict(add_probe(Path(sys.argv[1]))), indent=2))
