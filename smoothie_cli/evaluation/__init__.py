"""Evaluation: dataset catalogue, batched generation, tasks (no-Chinese, multiple choice, BERTScore), report."""
