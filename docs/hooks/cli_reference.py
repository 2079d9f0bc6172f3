"""MkDocs hook: render each command's options, and the data catalogue, from the code at build time.

A page holds a marker and the hook replaces it with Markdown:

    <!-- smoothie:options speculate -->   usage line and an options table, from the Typer app
    <!-- smoothie:commands -->            one row per command (name, panel, first help line)
    <!-- smoothie:catalogue -->           the dataset catalogue (package, version, licence, rows)

Why a hook and not a plugin from PyPI: Typer >= 0.26 vendors Click privately (`typer._click`), so its
commands are not `click.Command`s. mkdocs-click keeps only parameters that are `click.Option` instances and
renders no options for a Typer app; mkdocs-typer shells out to `typer ... utils docs`, which prints Rich
help rather than a table. This hook walks the command tree through the objects Typer itself returns
(`typer.main.get_command`, `get_params`, `get_help_record`, `get_usage`) and nothing private.

Strict mode (`mkdocs build --strict`) turns the warnings below into a failed build: a marker naming a command
that does not exist, or a command with no page under docs/commands/, fails it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("mkdocs.hooks.cli_reference")

MARKER = re.compile(r"<!--\s*smoothie:(options|commands|catalogue)\s*([\w-]*)\s*-->")


def _root() -> tuple[Any, Any]:
    import typer.main

    from smoothie_cli.cli import app

    root = typer.main.get_command(app)
    return root, root.make_context("smoothie", [], resilient_parsing=True)


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes and angle brackets escaped."""
    text = " ".join(text.split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _split_default(help_text: str) -> tuple[str, str]:
    """Click appends '  [default: X]' (and '[required]') to the help record; give them their own column."""
    match = re.search(r"\s*\[(default: [^\]]*|required)\]\s*$", help_text)
    if not match:
        return help_text, ""
    inner = match.group(1)
    return help_text[: match.start()], ("required" if inner == "required" else inner[len("default: ") :])


def options_markdown(name: str) -> str | None:
    root, root_ctx = _root()
    command = root.get_command(root_ctx, name)
    if command is None:
        return None
    ctx = command.make_context(name, [], parent=root_ctx, resilient_parsing=True)
    usage = command.get_usage(ctx).removeprefix("Usage: ").strip()
    lines = [f"```text\n{usage}\n```", "", (command.help or "").strip(), ""]
    arguments, options = [], []
    for param in command.get_params(ctx):
        if param.hidden or param.name == "help":
            continue
        if param.param_type_name == "argument":
            shown = " ".join(param.get_usage_pieces(ctx))
            arguments.append(f"| `{shown}` | {_cell(param.help or '')} |")
        else:
            record = param.get_help_record(ctx)
            if record is None:
                continue
            flags, help_text = record
            text, default = _split_default(help_text)
            default_cell = f"`{_cell(default)}`" if default else ""
            options.append(f"| `{flags}` | {_cell(text)} | {default_cell} |")
    if arguments:
        lines += ["**Arguments**", "", "| argument | meaning |", "|---|---|", *arguments, ""]
    lines += ["**Options**", "", "| option | meaning | default |", "|---|---|---|", *options, ""]
    lines.append(
        "<small>Generated from the command's own definition when the site is built; "
        f"`smoothie {name} --help` prints the same.</small>"
    )
    return "\n".join(lines)


def commands_markdown(prefix: str) -> str:
    root, root_ctx = _root()
    rows = ["| command | group | what it does |", "|---|---|---|"]
    for name in root.list_commands(root_ctx):
        command = root.get_command(root_ctx, name)
        if command is None or command.hidden:
            continue
        first = (command.help or "").strip().splitlines()[0] if command.help else ""
        panel = getattr(command, "rich_help_panel", None) or ""
        rows.append(f"| [`smoothie {name}`]({prefix}{name}.md) | {panel} | {_cell(first)} |")
    return "\n".join(rows)


def catalogue_markdown() -> str:
    from smoothie_cli.data.catalogue import CATALOGUE
    from smoothie_cli.data.datasets import list_datasets

    rows = [
        "| name | what | package (pinned) | licence | rows |",
        "|---|---|---|---|---|",
    ]
    for entry in CATALOGUE.values():
        rows.append(
            f"| `{entry.name}` | {_cell(entry.description)} | `{entry.package}=={entry.version}` "
            f"| {entry.license} | {entry.rows:,} |"
        )
    for name, description in list_datasets().items():
        if name not in CATALOGUE:
            rows.append(f"| `{name}` | {_cell(description)} | this project | Apache-2.0 | |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "commands":
            return commands_markdown("" if page.file.src_uri.startswith("commands/") else "commands/")
        if kind == "catalogue":
            return catalogue_markdown()
        rendered = options_markdown(name)
        if rendered is None:
            log.warning("%s: no command named %r in the smoothie app", page.file.src_path, name)
            return f"*(no command `{name}`)*"
        return rendered

    return MARKER.sub(replace, markdown)


def on_files(files: Any, config: Any) -> Any:
    """Every command has a page: a new command without docs/commands/NAME.md fails a strict build."""
    root, root_ctx = _root()
    pages = {f.src_uri for f in files if f.src_uri.startswith("commands/")}
    for name in root.list_commands(root_ctx):
        command = root.get_command(root_ctx, name)
        if command is not None and not command.hidden and f"commands/{name}.md" not in pages:
            log.warning("command %r has no page: add docs/commands/%s.md", name, name)
    return files
