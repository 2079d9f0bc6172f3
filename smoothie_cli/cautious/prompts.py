"""The draft's prompt format and tags, as the Cautious Speculative Decoding seed trained them.

The tags stay plain text (not added special tokens) so adapters trained by the seed, such as
`IanLi233/Cautious_Qwen`, read and write them the same way.
"""

from __future__ import annotations

from typing import Any, Literal

ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
MODERATION_INSTRUCTION = (
    "You are an AI content generator with moderation. Analyze the input text for toxic content including: "
    "hate speech, threats, severe profanity, harassment, racism, personal attacks, or harmful content. "
    "Start your response with <Toc> if the input contains toxic content, or <Safe> if it does not contain "
    "toxic content."
)
TOXIC_TAG = "<Toc>"
SAFE_TAG = "<Safe>"
TAG_SEPARATOR = "\n"  # between the tag and the answer in training targets
DEFAULT_REFUSAL = "I can't help with that request."

Gate = Literal["toxic", "safe", "untagged", "none"]


def draft_prompt(user_input: str, instruction: str = MODERATION_INSTRUCTION) -> str:
    """The Alpaca prompt the draft sees: the moderation instruction, the user's text as input."""
    return ALPACA_TEMPLATE.format(instruction=instruction, input=user_input)


def instruction_prefix(tokenizer: Any, instruction: str = MODERATION_INSTRUCTION) -> list[int]:
    """The tokens every draft prompt opens with (Alpaca header + instruction), up to the user's input."""
    head = draft_prompt("", instruction).split("### Input:\n")[0] + "### Input:\n"
    return tokenizer(head, add_special_tokens=False)["input_ids"]


def template_tail(tokenizer: Any, ids: list[int]) -> int:
    """How many of a draft prompt's last tokens are the template after the user's input ("\n\n###
    Response:\n"): the longest run of trailing tokens whose text ends the template. A token the user's last
    characters share with it ("?\n\n" is one token) counts as the user's."""
    after = ALPACA_TEMPLATE.split("{input}")[1]
    count = 0
    while count < len(ids) and after.endswith(tokenizer.decode(ids[len(ids) - count - 1 :])):
        count += 1
    return count


def training_response(tag: str, answer: str | None) -> str:
    """What the draft learns to write: the tag, then the answer when there is one."""
    return tag if not answer else f"{tag}{TAG_SEPARATOR}{answer}"


def read_tag(text: str) -> Gate | None:
    """'toxic' or 'safe' once `text` opens with a tag, 'untagged' once it cannot, None while undecided."""
    stripped = text.lstrip()
    for tag, gate in ((TOXIC_TAG, "toxic"), (SAFE_TAG, "safe")):
        if stripped.startswith(tag):
            return gate  # type: ignore[return-value]
    if any(tag.startswith(stripped) for tag in (TOXIC_TAG, SAFE_TAG)):
        return None
    return "untagged"
