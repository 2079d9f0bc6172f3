"""Batched, left-padded generation with a chat template, optionally through run-time logits processors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from smoothie_cli.evaluation.examples import Example
from smoothie_cli.progress import Progress, no_progress


class Generator(Protocol):
    """Anything that turns examples into answers: a model, a smoothed model, cautious speculation…"""

    name: str

    def generate(self, examples: Sequence[Example], progress: Progress = no_progress) -> list[str]: ...


def chat_prompt(tokenizer: Any, example: Example) -> str:
    """The example as the model's chat template would present it, ready for the assistant's answer."""
    messages = []
    if example.system:
        messages.append({"role": "system", "content": example.system})
    messages.append({"role": "user", "content": example.prompt})
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


@dataclass
class ModelGenerator:
    """Greedy (or sampled) generation from a transformers model, `batch_size` prompts at a time."""

    model: Any
    tokenizer: Any
    max_new_tokens: int = 128
    batch_size: int = 8
    logits_processors: list[Any] = field(default_factory=list)
    temperature: float = 0.0
    name: str = "model"

    def generate(self, examples: Sequence[Example], progress: Progress = no_progress) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        prompts = [chat_prompt(tokenizer, e) for e in examples]
        # longest first, so each batch pads little and the slowest batch shows up early in the ETA
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        sampling = (
            {"do_sample": True, "temperature": self.temperature}
            if self.temperature > 0
            else {"do_sample": False}
        )
        done = 0
        description = f"generating ({self.name})"
        progress(description, 0, len(prompts))
        device = next(self.model.parameters()).device
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            inputs = tokenizer(
                [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            with torch.inference_mode():
                output = self.model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    logits_processor=LogitsProcessorList(self.logits_processors),
                    pad_token_id=tokenizer.pad_token_id,
                    top_p=None,
                    top_k=None,
                    **sampling,
                )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                answers[i] = text
            done += len(batch)
            progress(description, done, len(prompts))
        return answers
