"""`smoothie eval`: score a model (as is, or through run-time smoothing) on tasks and datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from smoothie_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DraftQuant,
    DraftQuantOpt,
    Dtype,
    DtypeOpt,
    EndpointKeyOpt,
    EndpointOpt,
    EndpointProcessorOpt,
    EndpointTimeoutOpt,
    JsonOpt,
    McStyle,
    MinScaleOpt,
    ModelArg,
    ModeOpt,
    OutputDirOpt,
    ScalesOpt,
    SmoothMode,
    SmoothnessOpt,
    TaskName,
    TemperatureOpt,
    TopPOpt,
)
from smoothie_cli.errors import BadValue

TaskOpt = Annotated[
    list[TaskName] | None,
    typer.Option("--task", help="Task to run; repeatable (default: no-chinese)."),
]
DatasetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dataset",
        help="Catalogue name, HF dataset id, or .jsonl/.csv file; repeatable (default: per task).",
    ),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="At most N examples per dataset (fixed-seed sample).")
]
MaxNewOpt = Annotated[
    int | None,
    typer.Option("--max-new-tokens", help="Tokens to generate per answer (default 128; humaneval 512)."),
]
SamplesOpt = Annotated[
    int, typer.Option("--samples", help="Answers per prompt for generation tasks (needs --temperature > 0).")
]
McStyleOpt = Annotated[
    McStyle,
    typer.Option(
        "--mc-style",
        help="letters (MMLU-style A–D), text (option likelihood) or generate (parse the answer).",
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Prompts decoded together (32 suits a CPU).")]
ColumnOpt = Annotated[
    list[str] | None, typer.Option("--column", help="Column mapping for local files, e.g. prompt=question.")
]


def parse_columns(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        field, _, column = pair.partition("=")
        if not field or not column:
            raise BadValue(f"'{pair}' is not FIELD=COLUMN (for example prompt=question)", setting="column")
        mapping[field.strip()] = column.strip()
    return mapping


def evaluate(
    model: ModelArg = None,
    task: TaskOpt = None,
    dataset: DatasetOpt = None,
    limit: LimitOpt = None,
    max_new_tokens: MaxNewOpt = None,
    batch_size: BatchOpt = 32,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 1.0,
    samples: SamplesOpt = 1,
    scales: ScalesOpt = None,
    min_scale: MinScaleOpt = 0.5,
    smoothness: SmoothnessOpt = 10.0,
    mode: ModeOpt = SmoothMode.SCALE,  # type: ignore[attr-defined]
    mc_style: McStyleOpt = McStyle.LETTERS,  # type: ignore[attr-defined]
    bertscore_model: Annotated[
        str | None, typer.Option("--bertscore-model", help="Encoder for bertscore (default: offline MiniLM).")
    ] = None,
    draft: Annotated[
        str | None,
        typer.Option(
            "--draft", help="Generate through cautious speculation with this draft (MODEL = target)."
        ),
    ] = None,
    draft_quant: DraftQuantOpt = DraftQuant.AUTO,  # type: ignore[attr-defined]
    column: ColumnOpt = None,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.AUTO,  # type: ignore[attr-defined]
    seed: Annotated[int, typer.Option("--seed", help="Seed for --limit and for sampled answers.")] = 0,
    output: OutputDirOpt = None,
    as_json: JsonOpt = False,
    endpoint: EndpointOpt = None,
    endpoint_key: EndpointKeyOpt = None,
    endpoint_processor: EndpointProcessorOpt = False,
    endpoint_timeout: EndpointTimeoutOpt = None,
) -> None:
    """Evaluate a model: no-Chinese rate, multiple-choice accuracy, BERTScore, gate F1, with 95% intervals."""
    from smoothie_cli.evaluation.runner import EvalSettings
    from smoothie_cli.evaluation.runner import evaluate as run
    from smoothie_cli.ui import Output, score_table

    settings = EvalSettings(
        model=model, tasks=tuple(str(t) for t in task or ["no-chinese"]),
        datasets=None if dataset is None else tuple(dataset), limit=limit, max_new_tokens=max_new_tokens,
        batch_size=batch_size, temperature=temperature, top_p=top_p, samples=samples, scales=scales,
        min_scale=min_scale, smoothness=smoothness, mode=str(mode), mc_style=str(mc_style),
        bertscore_model=bertscore_model, draft=draft, draft_quant=str(draft_quant),
        columns=parse_columns(column), config=config, device=device, dtype=str(dtype), seed=seed,
        output=output, endpoint=endpoint, endpoint_key=endpoint_key, endpoint_processor=endpoint_processor,
        endpoint_timeout=endpoint_timeout,
    )  # fmt: skip
    out = Output.of(as_json)
    with out.progress() as progress:
        report = run(settings, progress)
    title = f"eval — {report.model} ({report.setting['label']})"
    out.result(report.as_dict(), lambda _: score_table(title, report.results))
