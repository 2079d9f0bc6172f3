"""`smoothie analyze`: which tokens write the target script, and how likely broken ones are to."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Any

import typer

from smoothie_cli.cli.options import ConfigOpt, Direction, JsonOpt, ModelArg, OutputDirOpt, Preset, value_of
from smoothie_cli.errors import BadValue

_RANGE = re.compile(r"^\s*(?:U\+|0x)?([0-9A-Fa-f]+)\s*[-–:]\s*(?:U\+|0x)?([0-9A-Fa-f]+)\s*$")


def parse_range(text: str) -> dict[str, Any]:
    match = _RANGE.match(text)
    if not match:
        raise BadValue(f"'{text}' is not START-END in hex (for example 4E00-9FFF)", setting="range")
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
        list[Preset] | None,
        typer.Option("--preset", help="Target script preset; repeatable.", show_default=False),
    ] = None,
    direction: Annotated[
        Direction | None,
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
    from smoothie_cli.config import load_config, with_overrides
    from smoothie_cli.smoothing.recipe import analyze_model
    from smoothie_cli.ui import Output
    from smoothie_cli.vocab.scripts import blocks_for

    targets = [
        {"name": b.name, "range": [b.start, b.end]} for b in blocks_for([str(p) for p in presets or []])
    ]
    targets += [parse_range(r) for r in ranges or []]
    overrides = {"window_size": window_size, "direction": value_of(direction)}
    cfg = with_overrides(load_config(config), analysis=overrides, unicode_targets=targets)
    out = Output.of(as_json)
    with out.progress() as progress:
        result, written = analyze_model(model, cfg, output, progress)
    summary = result.summary() | {"outputs": [str(p) for p in written]}
    out.result(summary, lambda _: _tables(out, result, summary, examples))
    out.note(f"analysis took {result.seconds:.2f} s")
    for path in written:
        out.note(f"wrote {path}")


def _token_text(data: bytes) -> str:
    return repr(data.decode("utf-8", "replace"))[1:-1]


def _tables(out: Any, result: Any, summary: dict[str, Any], examples: int) -> list[Any]:
    return [_overview(out, result, summary), _blocks(out, result), _examples(out, result, examples),
            _histogram(out, result)]  # fmt: skip


def _overview(out: Any, result: Any, summary: dict[str, Any]) -> Any:
    ident = result.identification
    size = summary["vocab_size"]

    def pct(n: int) -> str:
        return f"{100 * n / size:.2f}%"

    rows = [
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
    ]
    return out.table(f"Vocabulary of {result.model}", ["what", "tokens", "share"], rows,
                     justify=["left", "right", "right"])  # fmt: skip


def _blocks(out: Any, result: Any) -> Any:
    per_block = result.identification.per_block
    rows = [
        [b.name, f"U+{b.start:04X}–U+{b.end:04X}", f"{per_block.get(b.name, 0):,}"]
        for b in result.config.blocks()
    ]
    return out.table("Target tokens per Unicode block", ["block", "range", "tokens"], rows,
                     justify=["left", "left", "right"])  # fmt: skip


def _examples(out: Any, result: Any, examples: int) -> Any:
    windows, weighted, token_bytes = result.windows, result.weighted, result.vocab.token_bytes
    fragments = sorted(weighted, key=lambda t: (-weighted[t], t))
    picks = (
        fragments[: examples // 2] + [t for t in fragments if weighted[t] == 0][: examples - examples // 2]
    )
    rows = [
        [t, token_bytes[t].hex(" "), _token_text(token_bytes[t]),
         *[f"{result.probabilities[t][n]:.4f}" for n in windows], f"{weighted[t]:.4f}"]
        for t in picks
    ]  # fmt: skip
    target = result.identification.target
    every = max(1, len(target) // max(1, examples // 2))
    rows += [
        [t, token_bytes[t].hex(" "), _token_text(token_bytes[t]), *[""] * len(windows), "target"]
        for t in target[::every][: examples // 2]
    ]
    weights = ", ".join(f"w{n}={w:.2f}" for n, w in result.weights.items())
    return out.table(
        f"Examples ({result.config.analysis.direction}, {weights})",
        ["id", "bytes", "text", *[f"p{n}" for n in windows], "weighted_prob"],
        rows,
        justify=["right", "left", "left", *["right"] * (len(windows) + 1)],
    )


_EDGES = [0.0, 1e-12, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0 - 1e-12, 1.0 + 1e-9]
_LABELS = ["0", "(0, 0.05)", "[0.05, 0.1)", "[0.1, 0.2)", "[0.2, 0.4)", "[0.4, 0.6)", "[0.6, 0.8)",
           "[0.8, 1)", "1"]  # fmt: skip


def _histogram(out: Any, result: Any) -> Any:
    values = list(result.weighted.values())
    counts = [sum(1 for v in values if lo <= v < hi) for lo, hi in pairwise(_EDGES)]
    top = max(counts) or 1
    rows = [
        [label, f"{n:,}", "█" * max(1 if n else 0, round(40 * n / top))] for label, n in zip(_LABELS, counts)
    ]
    return out.table("weighted_prob of the analysed fragments", ["weighted_prob", "tokens", ""], rows,
                     justify=["left", "right", "left"])  # fmt: skip
