"""A calibrated draft's directory: the names of the files beside the adapter, and nothing else.

Every module that reads or writes one of these files takes its name from here (artifacts.py loads them
together), so the layout is written down once; the card's front matter too.
"""

from __future__ import annotations

WEIGHTS = "adapter_model.safetensors"  # the LoRA (peft's name)
ADAPTER_CONFIG = "adapter_config.json"
CARD = "README.md"  # the model card, with the weights' sha256 in its front matter
CALIBRATION_FILE = "gate.json"  # the calibrated threshold of the float32 reading (calibration.py)
INT8_CALIBRATION_FILE = "gate-int8.json"  # the same for the int8 draft's own reading
PROBE_FILE = "gate-probe.safetensors"  # the probe gate.json's threshold applies to (probe.py)
PROBE_INT8_FILE = "gate-probe-int8.safetensors"  # the int8 draft's own probe, beside gate-int8.json
METRICS = "metrics.json"  # finetune-draft's training report
SHIPPED_FILES = (ADAPTER_CONFIG, WEIGHTS, CALIBRATION_FILE, CARD)


def card_front_matter(base: str, sha256: str | None = None) -> list[str]:
    """The YAML front matter of a draft's card (Hugging Face's model-card header); the shipped copy's
    states its weights' sha256, which `smoothie_cli.models.embedded` checks."""
    pinned = [f"adapter_sha256: {sha256}"] if sha256 else []
    tags = "tags: [lora, moderation, speculative-decoding, smoothie]"
    return ["---", "library_name: peft", f"base_model: {base}", tags, *pinned, "---"]
