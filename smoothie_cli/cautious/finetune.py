"""Teach a draft model to open every answer with <Toc> or <Safe>: LoRA with peft, resumable, on a CPU.

The loop is our own rather than transformers' Trainer: it is short, it checkpoints the adapter and the AdamW
moments as safetensors (Trainer pickles optimizer and RNG state), and it resumes to the exact batch.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from smoothie_cli.cautious.conversation import Conversation, ConversationReader
from smoothie_cli.cautious.gate import DEFAULT_MAX_OVER_REFUSAL, GateCalibration
from smoothie_cli.cautious.layout import card_front_matter
from smoothie_cli.cautious.prompts import (
    DEFAULT_REFUSAL,
    MODERATION_INSTRUCTION,
    SAFE_TAG,
    TOXIC_TAG,
    draft_prompt,
    instruction_prefix,
    training_response,
)
from smoothie_cli.data.examples import Example
from smoothie_cli.errors import BadValue, CannotWrite, Conflict, NotFound, SmoothieError, UnknownChoice
from smoothie_cli.jsonable import finite
from smoothie_cli.jsonfile import first_line, read_json, validate
from smoothie_cli.progress import DETAIL, Progress, no_progress

# transformers 5 deprecates is_gradient_checkpointing, which peft still asks about on every model it wraps
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100
# what a calibrated gate thresholds (FinetuneSettings.gate_reading)
GATE_READINGS = ("probe", "margin")


@dataclass
class FinetuneSettings:
    base: str
    steps: int = 200
    batch_size: int = 8
    lr: float = 5e-4
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # adapt only the top N layers (None: all): the backward pass then stops there, half the step time on a
    # 24-layer 0.5B (13 s vs 27 s per step of 8 on 2 cores) for a tag that the top layers can learn
    layers: int | None = 8
    max_length: int = 192
    answer_tokens: int = 8  # answer tokens learnt after the tag (the tag itself always)
    limit: int | None = None  # training examples (balanced sample); None: the whole train split
    instruction: str = MODERATION_INSTRUCTION
    refusal: str = DEFAULT_REFUSAL
    seed: int = 0
    save_every: int = 10
    calibration_percent: int = 25  # of the train split, held out to choose the gate's threshold
    max_over_refusal: float = DEFAULT_MAX_OVER_REFUSAL  # the threshold keeps over-refusal under this there
    # moderation sources left out of training, calibration and the test metrics (leave-one-source-out)
    exclude_sources: tuple[str, ...] = ()
    # what the calibrated gate thresholds: "probe" (a linear probe on layers 10 and 14, cross-fitted on the
    # whole train split: probe.py) or "margin" (the first tag token's log-odds, on the calibration rows)
    gate_reading: str = "probe"

    def check(self) -> None:
        for name in ("steps", "batch_size", "rank", "max_length", "save_every"):
            if (value := getattr(self, name)) < 1:
                raise BadValue(f"must be at least 1, not {value}", setting=name)
        if not 0 < self.lr < 1:
            raise BadValue(f"must be in (0, 1), not {self.lr}", setting="lr")
        if self.layers is not None and self.layers < 1:
            raise BadValue(
                f"must be at least 1 (the top layers to adapt), not {self.layers}", setting="layers"
            )
        if not 0 <= self.max_over_refusal <= 1:
            raise BadValue(f"must be in [0, 1], not {self.max_over_refusal}", setting="max_over_refusal")
        if not 0 <= self.calibration_percent < 100:
            raise BadValue(
                f"must be in [0, 100), not {self.calibration_percent}", setting="calibration_percent"
            )
        if self.gate_reading not in GATE_READINGS:
            raise UnknownChoice(self.gate_reading, GATE_READINGS, what="gate reading", setting="gate_reading")
        if self.max_length < 64:
            raise BadValue(f"must be at least 64 (the moderation prompt alone is ~90 tokens), not "
                           f"{self.max_length}", setting="max_length")  # fmt: skip

    def resume_key(self) -> dict[str, Any]:
        """What must match for --resume to continue a checkpoint (everything but the step count)."""
        # tuples as lists: the checkpoint stores JSON
        skip = ("steps", "save_every", "max_over_refusal", "gate_reading")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k not in skip}


TAG_WEIGHT = 1.0  # per tag token: the gate decision is what the draft is trained for
ANSWER_WEIGHT = 0.1  # per answer token: enough to keep it answering after <Safe>, not enough to drown the tag


@dataclass
class TrainingExample:
    input_ids: list[int]
    labels: list[int]
    weights: list[float]


def training_examples(
    examples: list[Example], tokenizer: Any, settings: FinetuneSettings
) -> list[TrainingExample]:
    """Prompt + response token ids with the loss on the response only.

    Toxic → "<Toc>\\n<refusal>" + end of text. Safe with a reference → "<Safe>\\n<reference>" (+ end of
    text if it fits). Safe without one → "<Safe>" alone and no end of text, so the draft learns the tag
    without learning to stop after it. Long inputs are cut in the middle of the user's text, never in the tag.
    """
    eos = tokenizer.eos_token_id
    out = []
    for example in examples:
        toxic = example.label == "toxic"
        answer = settings.refusal if toxic else example.reference
        tag_ids = tokenizer(
            training_response(TOXIC_TAG if toxic else SAFE_TAG, None), add_special_tokens=False
        )
        response = tokenizer(
            training_response(TOXIC_TAG if toxic else SAFE_TAG, answer), add_special_tokens=False
        )
        response_ids = response["input_ids"][: len(tag_ids["input_ids"]) + settings.answer_tokens]
        if answer and len(response_ids) == len(response["input_ids"]) and eos is not None:
            response_ids = [*response_ids, eos]
        budget = settings.max_length - len(response_ids)
        prompt_ids = _prompt_ids(example.messages(), tokenizer, settings, budget)
        tag = len(tag_ids["input_ids"])
        weights = [0.0] * len(prompt_ids) + [TAG_WEIGHT] * tag + [ANSWER_WEIGHT] * (len(response_ids) - tag)
        out.append(
            TrainingExample(prompt_ids + response_ids, [IGNORE] * len(prompt_ids) + response_ids, weights)
        )
    return out


def _prompt_ids(
    conversation: Conversation, tokenizer: Any, settings: FinetuneSettings, budget: int
) -> list[int]:
    # the conversation as every gate reader renders it (conversation.py), then cut to the training length
    text = ConversationReader(tokenizer).text(conversation)
    ids = tokenizer(draft_prompt(text, settings.instruction), add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return ids
    user = tokenizer(text, add_special_tokens=False)["input_ids"]
    keep = max(budget - (len(ids) - len(user)), 8)
    while True:  # re-tokenising the joined halves can add a token or two: shrink until it fits
        head, tail = user[: keep // 2], user[len(user) - (keep - keep // 2) :]
        shortened = tokenizer.decode(head) + " … " + tokenizer.decode(tail)
        ids = tokenizer(draft_prompt(shortened, settings.instruction), add_special_tokens=False)["input_ids"]
        if len(ids) <= budget or keep <= 8:
            return ids
        keep = max(keep - (len(ids) - budget), 8)


@dataclass
class TrainState:
    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def batch_order(count: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The example indices of training step `step` (0-based): epochs are seeded shuffles, so a resumed run
    sees exactly the batches an uninterrupted one would."""
    per_epoch = max(count // batch_size, 1)
    epoch, position = divmod(step, per_epoch)
    order = list(range(count))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return order[position * batch_size : (position + 1) * batch_size]


def peft_model(model: Any, settings: FinetuneSettings) -> Any:
    from peft import LoraConfig, get_peft_model

    layers = None
    if settings.layers is not None:
        total = model.config.num_hidden_layers
        layers = list(range(max(total - settings.layers, 0), total))
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=LORA_TARGETS,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    import torch

    torch.manual_seed(settings.seed)  # LoRA A matrices start random: same seed, same run
    return get_peft_model(model, config)


def _collate(
    batch: list[TrainingExample], pad: int, device: Any, prefix: list[int] | None = None
) -> dict[str, Any]:
    """Right-padded tensors; with a `prefix` that every example opens with, it is cut off and kept once
    (`prefix_ids`): its forward is shared by the batch (see `weighted_loss`)."""
    import torch

    cut = 0
    if prefix and all(e.input_ids[: len(prefix)] == prefix for e in batch):
        cut = len(prefix)
    width = max(len(e.input_ids) for e in batch) - cut
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    weights = torch.zeros((len(batch), width))
    for row, example in enumerate(batch):
        n = len(example.input_ids) - cut
        ids[row, :n] = torch.tensor(example.input_ids[cut:])
        labels[row, :n] = torch.tensor(example.labels[cut:])
        mask[row, :n] = 1
        weights[row, :n] = torch.tensor(example.weights[cut:])
    collated = {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device),
                "weights": weights.to(device)}  # fmt: skip
    if cut:
        collated["prefix_ids"] = torch.tensor([prefix], device=device)
    return collated


def weighted_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Token-weighted cross-entropy on the response positions only.

    The model's own loss runs lm_head over every position (8 × 192 × 151,936 logits, about a third of a step's
    compute on this CPU) though three quarters of them are prompt; here only the response positions get
    logits, and the tag tokens outweigh the answer tokens. The ~100-token instruction that opens every
    prompt (about 60% of the tokens) runs once per batch, its KV cache repeated for every row: gradients
    flow back through the copies, so the loss and gradients are those of the full batch, at about half the
    cost of a step.
    """
    import torch

    from smoothie_cli.generation.cache import with_cache

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    mask, cache = batch["attention_mask"], None
    if "prefix_ids" in batch:
        cache = causal_lm.model(input_ids=batch["prefix_ids"], use_cache=True).past_key_values
        cache.batch_repeat_interleave(len(mask))
        prefix_mask = torch.ones(
            (len(mask), batch["prefix_ids"].shape[1]), dtype=mask.dtype, device=mask.device
        )
        mask = torch.cat([prefix_mask, mask], dim=1)
    hidden = causal_lm.model(input_ids=batch["input_ids"], attention_mask=mask,
                             **with_cache(causal_lm.model, cache), use_cache=cache is not None)  # fmt: skip
    hidden = hidden.last_hidden_state
    labels, weights = batch["labels"][:, 1:], batch["weights"][:, 1:]
    chosen = labels != IGNORE
    logits = causal_lm.lm_head(hidden[:, :-1][chosen]).float()
    losses = torch.nn.functional.cross_entropy(logits, labels[chosen], reduction="none")
    return (losses * weights[chosen]).sum() / weights[chosen].sum()


def learning_rate(settings: FinetuneSettings, step: int) -> float:
    """Linear warm-up over the first 10% of steps, then cosine decay to 10%."""
    warmup = max(settings.steps // 10, 1)
    if step < warmup:
        return settings.lr * (step + 1) / warmup
    progress = (step - warmup) / max(settings.steps - warmup, 1)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(
    model: Any,
    tokenizer: Any,
    examples: list[TrainingExample],
    settings: FinetuneSettings,
    checkpoint_dir: Path,
    *,
    resume: bool,
    progress: Progress = no_progress,
    on_step: Any = None,
) -> TrainState:
    """Run (or continue) the LoRA training, checkpointing into `checkpoint_dir` every `save_every` steps."""
    import torch

    device = next(model.parameters()).device
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=0.0)
    state = TrainState()
    if resume:
        state = load_checkpoint(model, optimizer, checkpoint_dir, settings)
    elif checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prefix = instruction_prefix(tokenizer, settings.instruction)
    torch.manual_seed(settings.seed + state.step)  # dropout masks: reproducible per step after a resume
    model.train()
    description = "fine-tuning the draft"
    progress(description, state.step, settings.steps)
    while state.step < settings.steps:
        start = time.perf_counter()
        batch = [
            examples[i] for i in batch_order(len(examples), settings.batch_size, state.step, settings.seed)
        ]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, state.step)
        loss = weighted_loss(model, _collate(batch, pad, device, prefix))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.losses.append(round(float(loss.detach()), 5))
        state.seconds += time.perf_counter() - start
        progress(f"{description}{DETAIL}loss {state.losses[-1]:.3f}", state.step, settings.steps)
        if on_step is not None:
            on_step(state)
        if state.step % settings.save_every == 0 or state.step == settings.steps:
            save_checkpoint(model, optimizer, checkpoint_dir, settings, state)
    model.eval()
    return state


# ---- checkpoints: adapter + AdamW moments as safetensors, state as JSON (no pickle) ------------------


def save_checkpoint(
    model: Any, optimizer: Any, directory: Path, settings: FinetuneSettings, state: TrainState
) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    from smoothie_cli.atomic import atomic_directory

    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    moments: dict[str, Any] = {}
    steps: dict[str, float] = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            slot = optimizer.state.get(parameter)
            if slot:
                name = names[id(parameter)]
                moments[f"{name}::exp_avg"] = slot["exp_avg"].contiguous()
                moments[f"{name}::exp_avg_sq"] = slot["exp_avg_sq"].contiguous()
                steps[name] = float(slot["step"])
    adapter = {k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()}
    with atomic_directory(directory, replace=True) as temp:
        save_file(adapter, str(temp / "adapter.safetensors"))
        save_file(moments, str(temp / "optimizer.safetensors"))
        document = {"state": asdict(state), "settings": settings.resume_key(), "adam_steps": steps}
        (temp / "state.json").write_text(json.dumps(document, indent=1))


def load_checkpoint(model: Any, optimizer: Any, directory: Path, settings: FinetuneSettings) -> TrainState:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    if not (directory / "state.json").is_file():
        raise NotFound(f"there is no checkpoint in {directory}; start without resuming", setting="resume")

    class Saved(BaseModel):  # what save_checkpoint writes to state.json
        model_config = ConfigDict(extra="forbid")
        state: dict[str, Any]
        settings: dict[str, Any]
        adam_steps: dict[str, float]

    saved = validate(
        Saved, read_json(directory / "state.json", "training checkpoint"), f"{directory}/state.json"
    )
    document = saved.model_dump()
    if document["settings"] != settings.resume_key():
        changed = sorted(k for k, v in settings.resume_key().items() if document["settings"].get(k) != v)
        raise Conflict(
            f"the checkpoint was made with other settings ({', '.join(changed)}); use the same settings, or "
            "start over without resuming",
            setting="resume",
        )
    device = next(model.parameters()).device
    try:
        state = TrainState(**document["state"])
        set_peft_model_state_dict(
            model, load_file(str(directory / "adapter.safetensors"), device=str(device))
        )
        moments = load_file(str(directory / "optimizer.safetensors"), device=str(device))
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and name in document["adam_steps"]:
                optimizer.state[parameter] = {
                    "step": torch.tensor(document["adam_steps"][name]),
                    "exp_avg": moments[f"{name}::exp_avg"],
                    "exp_avg_sq": moments[f"{name}::exp_avg_sq"],
                }
    except Exception as error:  # safetensors/peft/torch raise many types on a damaged checkpoint
        raise BadValue(
            f"the checkpoint in {directory} is damaged ({first_line(error)}); start over without resuming",
            setting="resume",
        ) from None
    return state


# ---- the whole job ----------------------------------------------------------------------------------


def checkpoint_directory(out: Path) -> Path:
    """Where an unfinished run keeps its checkpoints: beside OUT, hidden, removed once OUT is written."""
    return out.parent / f".{out.name}.checkpoint"


def finetune_draft(
    base_spec: str,
    out: Path,
    settings: FinetuneSettings,
    *,
    resume: bool = False,
    force: bool = False,
    merge: bool = False,
    eval_limit: int | None = 200,
    device: str = "auto",
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Fine-tune, calibrate the gate's threshold on held-out train prompts, score the gate before and
    after on the test split, write the adapter directory (with gate.json, the calibration)."""
    from smoothie_cli.cautious.gate import calibrate, classify, gate_scores, gate_values, tag_margins
    from smoothie_cli.data.datasets import select_examples
    from smoothie_cli.data.moderation import calibration_split, moderation_dataset
    from smoothie_cli.models import loading, resolve_model

    settings.check()
    out = Path(out)
    if out.exists() and not force:
        raise CannotWrite(f"output {out} already exists; give this to replace it", setting="force")
    if eval_limit is not None and eval_limit != 0 and eval_limit < 2:
        raise BadValue(
            f"must be at least 2 (or 0 to skip the evaluation), not {eval_limit}", setting="eval_limit"
        )
    source = resolve_model(base_spec)
    if source.kind in ("gguf", "peft"):
        raise SmoothieError(
            f"'{base_spec}' is a {source.kind} model; fine-tune a full checkpoint (e.g. an embedded: model)"
        )
    tokenizer = loading.load_tokenizer(source, progress)
    progress("loading base model", 0, 1)
    model = loading.load_model(source, device=device, dtype="float32", progress=progress)
    progress("loading base model", 1, 1)
    train_set, calibration_set = calibration_split(
        moderation_dataset("train", progress, seed=settings.seed, exclude=settings.exclude_sources).examples,
        settings.calibration_percent,
    )
    train_set = select_examples(train_set, limit=settings.limit, seed=settings.seed)
    test_set = select_examples(
        moderation_dataset("test", progress, exclude=settings.exclude_sources).examples,
        limit=eval_limit or None,
        seed=0,
    )
    labels = [e.label or "safe" for e in test_set]
    prompts = [e.messages() for e in test_set]  # the gate reads whole conversations
    checkpoints = checkpoint_directory(out)
    checkpoints.parent.mkdir(parents=True, exist_ok=True)

    def evaluate(
        description: str, threshold: float | None = None, probe: Any = None
    ) -> dict[str, Any] | None:
        if not eval_limit:
            return None
        margins = gate_values(model, tokenizer, prompts, probe=probe, instruction=settings.instruction,
                              progress=progress, description=description)  # fmt: skip
        if threshold is None:  # greedy, as a foreign adapter is read
            gates = classify(model, tokenizer, prompts, instruction=settings.instruction, progress=progress,
                             description=description)  # fmt: skip
        else:
            gates = ["toxic" if m > threshold else "safe" for m in margins]
        scores = gate_scores(labels, gates, margins=margins)
        return {k: v.as_dict(k) | {"n": v.n} for k, v in scores.items()}

    base_metrics_file = checkpoints / "base_metrics.json"
    if resume and base_metrics_file.is_file():
        base_metrics = read_json(base_metrics_file, "training checkpoint")
    else:
        base_metrics = evaluate("zero-shot gate of the base model")
    model = peft_model(model, settings)
    if settings.gate_reading == "probe":  # before minutes of training, not after
        from smoothie_cli.cautious.probe import check_layers_below_adapter

        check_layers_below_adapter(model, setting="layers")
    examples = training_examples(train_set, tokenizer, settings)
    state = train(model, tokenizer, examples, settings, checkpoints, resume=resume, progress=progress)
    if base_metrics is not None:
        base_metrics_file.write_text(json.dumps(base_metrics))
    tuned_metrics = evaluate("gate of the fine-tuned draft")
    calibration, probe = None, None
    if settings.gate_reading == "probe":
        from smoothie_cli.cautious.probe import calibrate_probe

        probe, calibration = calibrate_probe(
            model, tokenizer, train_set + calibration_set, instruction=settings.instruction,
            max_over_refusal=settings.max_over_refusal, progress=progress,
        )  # fmt: skip
    elif calibration_set:
        margins = tag_margins(model, tokenizer, [e.messages() for e in calibration_set],
                              instruction=settings.instruction, progress=progress,
                              description="calibrating the gate")  # fmt: skip
        calibration = calibrate(
            margins, [e.label or "safe" for e in calibration_set], settings.max_over_refusal
        )
    calibrated_metrics = evaluate("calibrated gate", calibration.threshold, probe) if calibration else None
    report = {
        "base": source.spec,
        "output": str(out),
        "train_examples": len(examples),
        "calibration_examples": len(calibration_set),
        "test_examples": len(test_set) if eval_limit else 0,
        "steps": state.step,
        "train_seconds": round(state.seconds, 1),
        "final_loss": state.losses[-1] if state.losses else None,
        "losses": state.losses,
        "metrics": {"base": base_metrics, "finetuned": tuned_metrics, "calibrated": calibrated_metrics},
        "calibration": asdict(calibration) if calibration else None,
        "settings": asdict(settings),
    }
    _write_adapter(model, tokenizer, source, out, report, calibration, probe, merge=merge, progress=progress)
    shutil.rmtree(checkpoints, ignore_errors=True)
    if merge:
        report["merged"] = str(out / "merged")
    return report


def _base_reference(source: Any) -> str:
    """How the adapter names its base: the spec for embedded/hub models, an absolute path for directories."""
    return source.location if source.kind == "local" else source.spec


def _write_adapter(
    model: Any,
    tokenizer: Any,
    source: Any,
    out: Path,
    report: dict[str, Any],
    calibration: GateCalibration | None,
    probe: Any,
    *,
    merge: bool,
    progress: Progress,
) -> None:
    from smoothie_cli.atomic import atomic_directory

    progress("writing the adapter", 0, 1)
    with atomic_directory(out, replace=True) as temp:
        model.save_pretrained(str(temp))
        config_path = temp / "adapter_config.json"
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = _base_reference(source)  # peft writes a cache path here
        config_path.write_text(json.dumps(config, indent=2))
        tokenizer.save_pretrained(str(temp))
        (temp / "metrics.json").write_text(json.dumps(finite(report), indent=2))
        (temp / "README.md").write_text(_card(report))
        if calibration is not None:
            calibration.save(temp)
        if probe is not None:
            probe.save(temp)
        if merge:
            merged = model.merge_and_unload()
            merged.save_pretrained(str(temp / "merged"))
            tokenizer.save_pretrained(str(temp / "merged"))
    progress("writing the adapter", 1, 1)


def _card(report: dict[str, Any]) -> str:
    settings = report["settings"]
    lines = [
        *card_front_matter(report["base"]),
        "",
        "# Cautious draft (smoothie finetune-draft)",
        "",
        f"LoRA adapter (rank {settings['rank']}) on `{report['base']}` that opens every answer with `<Toc>` "
        "(toxic or jailbreak request) or `<Safe>`, in the Alpaca prompt with the moderation instruction. "
        "Use it as the draft of `smoothie speculate --draft <this directory>`.",
        "",
        f"Trained {report['steps']} steps × {settings['batch_size']} on {report['train_examples']} balanced "
        f"examples (smoothie's moderation train split) in {report['train_seconds']} s.",
        "",
        "| gate on the held-out split | precision | recall | F1 | over-refusal | untagged |",
        "|---|---|---|---|---|---|",
    ]
    for name, metrics in report["metrics"].items():
        if metrics:
            keys = ("gate_precision", "gate_recall", "gate_f1", "over_refusal", "untagged")
            cells = [f"{metrics[k][k]:.3f}" for k in keys]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if report.get("calibration"):
        calibration = report["calibration"]
        described = GateCalibration(**calibration).describe()
        lines += [
            "",
            f"`gate.json` holds the calibrated gate: {described}. Without it (or with `--gate-threshold "
            "greedy`) the tag is read greedily.",
        ]
    return "\n".join(lines) + "\n"
