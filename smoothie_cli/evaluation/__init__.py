"""Evaluation: datasets, batched generation, tasks (no-Chinese, multiple choice, BERTScore), reports."""
