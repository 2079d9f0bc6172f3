"""Task registry: a new task is one small module and one line here."""

from __future__ import annotations

from smoothie_cli.errors import UnknownChoice
from smoothie_cli.evaluation.tasks.base import EvalContext, SampleResult, Task, TaskResult
from smoothie_cli.evaluation.tasks.bertscore import BertScoreTask
from smoothie_cli.evaluation.tasks.fidelity import FidelityTask
from smoothie_cli.evaluation.tasks.humaneval import HumanEvalTask
from smoothie_cli.evaluation.tasks.language import LanguageTask
from smoothie_cli.evaluation.tasks.mc import MultipleChoiceTask
from smoothie_cli.evaluation.tasks.no_chinese import NoChineseTask
from smoothie_cli.evaluation.tasks.toxicity import ToxicityTask

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        NoChineseTask(),
        MultipleChoiceTask(),
        BertScoreTask(),
        ToxicityTask(),
        HumanEvalTask(),
        LanguageTask(),
        FidelityTask(),
    )
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UnknownChoice(name, TASKS, what="task", setting="tasks")
    return TASKS[name]


__all__ = ["TASKS", "EvalContext", "SampleResult", "Task", "TaskResult", "get_task"]
