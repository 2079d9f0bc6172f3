"""Chat prompts and stop ids: how a request becomes the token ids a model continues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": text}


def messages_for(prompt: str, system: str | None = None) -> list[Message]:
    """A one-turn conversation: an optional system message, then the user's prompt."""
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def chat_prompt(tokenizer: Any, messages: Sequence[Message] | Any) -> str:
    """The conversation as the model's chat template presents it, ready for the assistant's answer.

    `messages` is a list of {role, content} or anything with `.prompt` and `.system` (an evaluation Example).
    """
    if not isinstance(messages, Sequence):
        messages = messages_for(messages.prompt, getattr(messages, "system", None))
    messages = list(messages)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` as written (chat templates carry their own special tokens)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-turn ids: the generation config's eos list (Qwen: <|im_end|>, <|endoftext|>) and the
    tokenizer's eos."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def vocab_rows(model: Any) -> int:
    """Token ids a model can both read and write (models of one family may differ in padding rows)."""
    if not hasattr(model, "get_input_embeddings"):  # an engine that is not a torch module (llama.cpp)
        return int(model.vocab_size)
    return min(model.get_input_embeddings().num_embeddings, model.get_output_embeddings().out_features)
