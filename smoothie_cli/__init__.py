"""smoothie: steer what Qwen-family language models write."""

__version__ = "0.1.0"
