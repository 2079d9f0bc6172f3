"""Splits and samples by one rule: a prompt's hash bucket.

Every split in smoothie (train/test, the gate's calibration hold-out, the probe's folds) puts a prompt in a
bucket given by the sha256 of a salt and its text, so a prompt lands in the same part on every machine and in
every run, whichever source it came from.
"""

from __future__ import annotations

import hashlib
import random

from smoothie_cli.data.examples import Example
from smoothie_cli.errors import BadValue

SPLITS = ("train", "test")
TEST_PERCENT = 20


def hash_digest(text: str, salt: str = "") -> bytes:
    """The sha256 of `salt` + `text` (UTF-8): a stable key to order or bucket prompts by."""
    return hashlib.sha256(salt.encode("utf-8") + text.encode("utf-8")).digest()


def hash_bucket(text: str, salt: str = "", buckets: int = 100) -> int:
    """The bucket (0 … buckets−1) of `text`: the first 8 bytes of its salted sha256, modulo `buckets`."""
    return int.from_bytes(hash_digest(text, salt)[:8], "big") % buckets


def split_of(prompt: str) -> str:
    """'test' for about TEST_PERCENT % of prompts, else 'train', decided by the sha256 of the prompt text."""
    return "test" if hash_bucket(prompt) < TEST_PERCENT else "train"


def select_examples(
    examples: list[Example], *, limit: int | None = None, seed: int = 0, split: str | None = None
) -> list[Example]:
    """Keep one split (None: all), then a random sample of `limit` drawn with `seed`, in original order."""
    if split is not None:
        examples = [e for e in examples if split_of(e.split_key) == split]
    if limit is not None and limit < len(examples):
        chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
        examples = [examples[i] for i in chosen]
    return list(examples)


def calibration_split(examples: list[Example], percent: int) -> tuple[list[Example], list[Example]]:
    """(fit, calibration): about `percent` % of the train split held out, by a hash of the text, to choose
    the gate's threshold on prompts the draft was not trained on (the test split stays untouched)."""
    if not 0 <= percent < 100:
        raise BadValue(f"{percent} is not a percentage in [0, 100)", setting="calibration_percent")
    fit: list[Example] = []
    held: list[Example] = []
    for example in examples:
        (held if hash_bucket(example.split_key, "calibration:") < percent else fit).append(example)
    return fit, held
