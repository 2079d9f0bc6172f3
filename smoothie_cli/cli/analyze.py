"""`smoothie analyze`: which tokens write the target script, and how likely broken ones are to."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import ConfigOpt, JsonOpt, ModelArg, OutputDirOpt
from smoothie_cli.errors import SmoothieError
from smoothie_cli.unicode_blocks import PRESETS

_RANGE = re.compile(r"^\s*(?:U\+|0x)?([0-9A-Fa-f]+)\s*[-–:]\s*(?:U\+|0x)?([0-9A-Fa-f]+)\s*$")


def parse_range(text: str) -> dict[str, Any]:
    match = _RANGE.match(text)
    if not match:
        raise SmoothieError(f"--range '{text}' is not START-END in hex (for example 4E00-9FFF)")
    start, end = (int(g, 16) for g in match.groups())
    return {"name": f"U+{start:04X}–U+{end:04X}", "range": [start, end]}


def analyze(
    model: ModelArg = None,
    config: ConfigOpt = None,
    window_size: Annotated[
        int | None, typer.Option("--window-size", help="Largest n-gram window, 2 to 4.", show_default=False)
    ] = None,
    ranges: Annotated[
        list[str] | None,
        typer.Option(
            "--range", help="Target code-point range START-END in hex; repeatable.", show_default=False
        ),
    ] = None,
    presets: Annotated[
        list[str] | None,
        typer.Option(
            "--preset", help=f"Target script preset: {', '.join(PRESETS)}; repeatable.", show_default=False
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            "--direction",
            help="forward: t opens a char later tokens close (default); backward: t closes one.",
        ),
    ] = None,
    output: OutputDirOpt = None,
    examples: Annotated[int, typer.Option("--examples", help="Example tokens to show per kind.")] = 6,
    as_json: JsonOpt = False,
) -> None:
    """Find the tokens that write the target script and score broken (byte-fragment) tokens exactly."""
    from smoothie_cli import ui
    from smoothie_cli.config import load_config, with_overrides
    from smoothie_cli.models import resolve_model, tokenizer_location
    from smoothie_cli.vocab.analysis import analyze_vocabulary
    from smoothie_cli.vocab.scripts import blocks_for
    from smoothie_cli.vocab.tokens import load_vocabulary

    cfg = load_config(config)
    for name in presets or []:
        if name not in PRESETS:
            raise SmoothieError(f"unknown --preset '{name}'; choose from {', '.join(PRESETS)}")
    targets = [{"name": b.name, "range": [b.start, b.end]} for b in blocks_for(presets or [])]
    targets += [parse_range(r) for r in ranges or []]
    cfg = with_overrides(
        cfg,
        analysis={"window_size": window_size, "direction": direction},
        unicode_targets=targets,
    )
    source = resolve_model(model or cfg.model.name)
    with ui.progress_bar(enabled=True) as progress:
        location = tokenizer_location(source, progress)
        vocab = load_vocabulary(location)
        result = analyze_vocabulary(source.spec, vocab, cfg)
    written: list[Path] = []
    if output is not None:
        written = _write_outputs(result, output)
    summary = result.summary()
    summary["outputs"] = [str(p) for p in written]
    if as_json:
        ui.print_json(summary)
        return
    _render(result, summary, examples)
    for path in written:
        ui.note(f"wrote {path}")


def _write_outputs(result: Any, output: Path) -> list[Path]:
    from smoothie_cli.models.atomic import write_text_atomic
    from smoothie_cli.plots import histogram_png

    try:
        output.mkdir(parents=True, exist_ok=True)
        path = output / "analysis.json"
        write_text_atomic(path, result.to_json())
        plot = histogram_png(
            list(result.weighted.values()),
            output / "weighted_prob.png",
            f"weighted_prob of {len(result.weighted):,} fragment tokens — {result.model}",
            "weighted_prob (chance the token ends up in a target character)",
        )
    except OSError as error:
        raise SmoothieError(
            f"cannot write to {output}: {error.strerror or error}; choose another -o"
        ) from None
    return [path, plot]


def _token_text(data: bytes) -> str:
    return repr(data.decode("utf-8", "replace"))[1:-1]


def _render(result: Any, summary: dict[str, Any], examples: int) -> None:
    from smoothie_cli import ui

    ident = result.identification
    size = summary["vocab_size"]

    def pct(n: int) -> str:
        return f"{100 * n / size:.2f}%"

    overview = ui.table(
        f"Vocabulary of {result.model}",
        ["what", "tokens", "share"],
        [
            ["base vocabulary analysed", f"{size:,}", ""],
            ["added / special tokens (not analysed)", f"{summary['added_tokens']:,}", ""],
            ["target tokens", f"{len(ident.target):,}", pct(len(ident.target))],
            ["broken tokens (decode to U+FFFD)", f"{len(ident.broken):,}", pct(len(ident.broken))],
            ["  ├ fragments (not valid UTF-8 alone)", f"{len(ident.fragments):,}", pct(len(ident.fragments))],
            [
                "  └ spell U+FFFD literally",
                f"{len(ident.literal_replacement):,}",
                pct(len(ident.literal_replacement)),
            ],
            ["fragments with weighted_prob > 0", f"{summary['scaled_broken_tokens']:,}", ""],
        ],
        justify=["left", "right", "right"],
    )
    blocks = ui.table(
        "Target tokens per Unicode block",
        ["block", "range", "tokens"],
        [
            [b.name, f"U+{b.start:04X}–U+{b.end:04X}", f"{ident.per_block.get(b.name, 0):,}"]
            for b in result.config.blocks()
        ],
        justify=["left", "left", "right"],
    )
    windows = result.windows
    weights = ", ".join(f"w{n}={w:.2f}" for n, w in result.weights.items())
    fragments = sorted(result.weighted, key=lambda t: (-result.weighted[t], t))
    picks = (
        fragments[: examples // 2]
        + [t for t in fragments if result.weighted[t] == 0][: examples - examples // 2]
    )
    example_rows = [
        [
            t,
            result.vocab.token_bytes[t].hex(" "),
            _token_text(result.vocab.token_bytes[t]),
            *[f"{result.probabilities[t][n]:.4f}" for n in windows],
            f"{result.weighted[t]:.4f}",
        ]
        for t in picks
    ]
    example_rows += [
        [
            t,
            result.vocab.token_bytes[t].hex(" "),
            _token_text(result.vocab.token_bytes[t]),
            *[""] * len(windows),
            "target",
        ]
        for t in ident.target[:: max(1, len(ident.target) // max(1, examples // 2))][: examples // 2]
    ]
    sample = ui.table(
        f"Examples ({result.config.analysis.direction}, {weights})",
        ["id", "bytes", "text", *[f"p{n}" for n in windows], "weighted_prob"],
        example_rows,
        justify=["right", "left", "left", *["right"] * (len(windows) + 1)],
    )
    edges = [0.0, 1e-12, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0 - 1e-12, 1.0 + 1e-9]
    labels = [
        "0",
        "(0, 0.05)",
        "[0.05, 0.1)",
        "[0.1, 0.2)",
        "[0.2, 0.4)",
        "[0.4, 0.6)",
        "[0.6, 0.8)",
        "[0.8, 1)",
        "1",
    ]
    values = list(result.weighted.values())
    counts = [sum(1 for v in values if lo <= v < hi) for lo, hi in pairwise(edges)]
    top = max(counts) or 1
    histogram = ui.table(
        "weighted_prob of the analysed fragments",
        ["weighted_prob", "tokens", ""],
        [
            [label, f"{n:,}", "█" * max(1 if n else 0, round(40 * n / top))]
            for label, n in zip(labels, counts)
        ],
        justify=["left", "right", "left"],
    )
    ui.show(overview, blocks, sample, histogram)
    ui.note(f"analysis took {result.seconds:.2f} s")
