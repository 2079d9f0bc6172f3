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
        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        prompts = [chat_prompt(tokenizer, e) for e in examples]
        # longest first, so each batch pads little and the slowest batch shows up early in the ETA
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        description = f"generating ({self.name})"
        progress(description, 0, len(prompts))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = tokenizer(
                [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            )
            tokens = decode_batch(
                self.model,
                encoded["input_ids"],
                encoded["attention_mask"],
                max_new_tokens=self.max_new_tokens,
                eos_ids=stop_ids(self.model, tokenizer),
                logits_processors=self.logits_processors,
                temperature=self.temperature,
            )
            for i, text in zip(batch, tokenizer.batch_decode(tokens, skip_special_tokens=True)):
                answers[i] = text
            progress(description, start + len(batch), len(prompts))
        return answers


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-turn ids: the generation config's eos list (Qwen: <|im_end|>, <|endoftext|>) and the
    tokenizer's eos."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def decode_batch(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    logits_processors: Sequence[Any] = (),
    temperature: float = 0.0,
    cache: Any = None,
) -> list[list[int]]:
    """Greedy (or sampled) decoding of a left-padded batch with a KV cache; the new tokens of each row.

    Unlike `generate`, rows that reach end-of-turn leave the batch (their KV cache rows are dropped), so a
    batch costs about the sum of its answers' lengths instead of batch size × the longest answer; this is
    what makes batching pay on CPU when answers differ in length.

    `cache` may already hold a shared prompt prefix for every row; `attention_mask` then covers the prefix
    columns too (padding sits between prefix and suffix, and positions follow the mask).
    """
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    sequences = input_ids.to(device)
    mask = attention_mask.to(device)
    rows = torch.arange(sequences.shape[0], device=device)
    new_tokens: list[list[int]] = [[] for _ in range(sequences.shape[0])]
    cache = DynamicCache() if cache is None else cache
    step_input = sequences
    eos = torch.tensor(sorted(eos_ids), device=device)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_input.shape[1] :]
            logits = (
                model(
                    input_ids=step_input,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                .logits[:, -1]
                .float()
            )
            for processor in logits_processors:
                logits = processor(sequences, logits)
            if temperature > 0:
                chosen = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1)[:, 0]
            else:
                chosen = logits.argmax(dim=-1)
            for row, token in zip(rows.tolist(), chosen.tolist()):
                new_tokens[row].append(token)
            finished = torch.isin(chosen, eos)
            if bool(finished.all()):
                break
            if bool(finished.any()):
                keep = (~finished).nonzero().flatten()
                cache.batch_select_indices(keep)
                rows, chosen, sequences, mask = rows[keep], chosen[keep], sequences[keep], mask[keep]
            sequences = torch.cat([sequences, chosen[:, None]], dim=-1)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            step_input = chosen[:, None]
    return new_tokens
