"""`smoothie eval`: score a model (as is, or through run-time smoothing) on tasks and datasets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DraftQuantOpt,
    JsonOpt,
    MinScaleOpt,
    ModelArg,
    ModeOpt,
    OutputDirOpt,
    ScalesOpt,
    SmoothnessOpt,
    TemperatureOpt,
    TopPOpt,
)
from smoothie_cli.errors import SmoothieError

TaskOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--task",
        help="no-chinese, mc, bertscore, toxicity, humaneval, language, fidelity; repeatable "
        "(default: no-chinese).",
    ),
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
    str | None,
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
            raise SmoothieError(f"--column '{pair}' is not FIELD=COLUMN (for example prompt=question)")
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
    mode: ModeOpt = "scale",
    mc_style: McStyleOpt = "letters",
    bertscore_model: Annotated[
        str | None, typer.Option("--bertscore-model", help="Encoder for bertscore (default: offline MiniLM).")
    ] = None,
    draft: Annotated[
        str | None,
        typer.Option(
            "--draft", help="Generate through cautious speculation with this draft (MODEL = target)."
        ),
    ] = None,
    draft_quant: DraftQuantOpt = "auto",
    column: ColumnOpt = None,
    config: ConfigOpt = None,
    device: DeviceOpt = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16, float16.")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Seed for --limit and for sampled answers.")] = 0,
    output: OutputDirOpt = None,
    as_json: JsonOpt = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint", help="Answers from this OpenAI-compatible server (.../v1); MODEL: its model name."
        ),
    ] = None,
    endpoint_key: Annotated[
        str | None, typer.Option("--endpoint-key", envvar="SMOOTHIE_ENDPOINT_KEY", help="Bearer key.")
    ] = None,
    endpoint_processor: Annotated[
        bool,
        typer.Option(
            "--endpoint-processor", help="The endpoint runs smoothie's vLLM processor: send it --mode."
        ),
    ] = False,
) -> None:
    """Evaluate a model: no-Chinese rate, multiple-choice accuracy, BERTScore, gate F1, with 95% intervals."""
    from smoothie_cli import ui
    from smoothie_cli.config import load_config
    from smoothie_cli.evaluation.runner import plan, run_plan, summarise, write_run
    from smoothie_cli.evaluation.session import open_session
    from smoothie_cli.generation.batched import ModelGenerator
    from smoothie_cli.generation.sampling import SamplingConfig

    start = time.perf_counter()
    if limit is not None and limit < 1:
        raise SmoothieError("--limit must be at least 1")
    if (max_new_tokens is not None and max_new_tokens < 1) or batch_size < 1 or samples < 1:
        raise SmoothieError("--max-new-tokens, --batch-size and --samples must be at least 1")
    sampling = SamplingConfig(temperature, top_p, seed=seed)
    if samples > 1 and sampling.greedy:
        raise SmoothieError("--samples above 1 needs sampling: give --temperature above 0")
    tokens = max_new_tokens or 128
    items = plan(task or ["no-chinese"], dataset)
    columns = parse_columns(column)
    cfg = load_config(config)
    if endpoint is not None:
        from smoothie_cli.cli.serve_upstream import upstream_smoothing
        from smoothie_cli.evaluation.endpoint import check_endpoint_tasks, endpoint_session

        check_endpoint_tasks([i.task for i in items])
        if draft is not None:
            raise SmoothieError("--draft gates and drafts locally; with --endpoint, leave it out")
        bias, xargs, label = upstream_smoothing(
            model or cfg.model.name, config, scales, min_scale, smoothness, mode, endpoint_processor
        )
        extra = {"logit_bias": bias} if bias else {"vllm_xargs": xargs} if xargs else None
        session = endpoint_session(endpoint, model, endpoint_key, cfg, sampling, tokens, batch_size, extra)
        setting = {"label": f"{endpoint}, smoothing: {label}", "endpoint": endpoint, "scales": scales}
    with ui.progress_bar() as progress:
        if endpoint is None:
            session = open_session(
                model or cfg.model.name, cfg, device=device, dtype=dtype, max_new_tokens=tokens,
                batch_size=batch_size, progress=progress,
            )  # fmt: skip
        if isinstance(session.context.generator, ModelGenerator):
            session.context.generator.sampling = sampling
        if endpoint is None:
            setting = session.apply_setting(scales, min_scale, smoothness, mode)
        if (
            draft is not None and endpoint is None
        ):  # after the scales: the draft drafts through the same processors
            setting |= session.use_draft(draft, draft_quant, tokens, progress)
            setting["label"] += f", cautious decoding with {setting['draft']} ({setting['draft_quant']})"
        session.context.options.update(
            {"mc_style": mc_style, "bertscore_model": bertscore_model, "max_new_tokens": max_new_tokens,
             "samples": samples}
        )  # fmt: skip
        if not sampling.greedy:
            setting["sampling"] = {
                "temperature": temperature,
                "top_p": top_p,
                "samples": samples,
                "seed": seed,
            }
        results = run_plan(session.context, items, limit=limit, seed=seed, columns=columns, progress=progress)
    summary: dict[str, Any] = {
        "model": session.source.spec,
        "setting": setting,
        "results": summarise(results),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if output is not None:
        try:
            summary["outputs"] = [str(p) for p in write_run(Path(output), results, summary)]
        except OSError as error:
            raise SmoothieError(
                f"cannot write to {output}: {error.strerror or error}; choose another -o"
            ) from None
    if as_json:
        ui.print_json(summary)
        return
    ui.show(ui.score_table(f"eval — {session.source.spec} ({setting['label']})", results))
