"""Where models come from: hub ids, local directories, .gguf files, PEFT adapters, embedded:<name>."""

from smoothie_cli.models.resolve import ModelSource, model_directory, resolve_model, tokenizer_location

__all__ = ["ModelSource", "model_directory", "resolve_model", "tokenizer_location"]
