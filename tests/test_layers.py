"""The house's layers, read from the source with ast: no import cycle between modules, lazy imports included.

(tests/test_generation.py checks the same between the package's parts; this is the finer graph.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "smoothie_cli"

# Cycles that another branch of work removes; each entry is one strongly connected set of modules. Empty it
# as they go: the test fails when a listed cycle no longer exists, so the list cannot go stale.
KNOWN_CYCLES: list[set[str]] = []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere (at the top or inside a function), with the packages
    whose __init__ such an import runs (importing a.b.c runs a.b first)."""
    modules = all_modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                parts = target.split(".")
                for end in range(2, len(parts) + 1):  # the module itself and the packages above it
                    other = ".".join(parts[:end])
                    if other in modules and other != name and not name.startswith(other + "."):
                        found.add(other)
        edges[name] = found
    return edges


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    found = cycles(import_graph())
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not new, f"modules in an import cycle: {new}"
    assert not gone, f"no longer a cycle, take it off KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_finds_a_cycle_through_a_package_init() -> None:
    edges = {"p": {"p.resolve"}, "p.resolve": {"p.embedded"}, "p.embedded": {"q"}, "q": {"p.atomic"},
             "p.atomic": set()}  # fmt: skip
    assert cycles(edges) == []
    edges["q"].add("p")  # importing p.atomic from q runs p/__init__, which reaches q again
    assert cycles(edges) == [{"p", "p.resolve", "p.embedded", "q"}]


def test_the_core_never_imports_the_cli_or_rich() -> None:
    front = ("smoothie_cli.cli", "smoothie_cli.ui", "smoothie_cli.__main__")
    edges = import_graph()
    core = [m for m in edges if not m.startswith(front)]
    assert not [m for m in core if any(o.startswith(front[:2]) for o in edges[m])]
    sources = {m: p.read_text(encoding="utf-8") for m, p in all_modules().items() if m in core}
    assert not [m for m, text in sources.items() if "import rich" in text or "from rich" in text]


# ---- the core's errors name settings, not flags (issue 29) ------------------------------------------------

# A flag-shaped word in a message: --word, or a one-letter -o
FLAG_WORD = re.compile(r"(?<![\w-])(--[a-zA-Z][\w-]*|-[a-zA-Z](?![\w-]))")
# (module, flag) pairs a core message may still name, each with why; the test fails when one goes unused
ALLOWED_FLAGS: dict[tuple[str, str], str] = {
    # pip's own flag, in the command the user runs to repair a broken install: not a smoothie option
    ("smoothie_cli.models.embedded", "--force-reinstall"): "pip install --force-reinstall",
}
# settings a core error may carry that are no smoothie flag, each with why
ALLOWED_SETTINGS: dict[str, str] = {
    # a JSONL row's "messages" field: speculate's --input reader catches the error and names file and line
    "messages": "a field of an --input row",
}


def error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """Names of SmoothieError and every subclass: smoothie_cli.errors' and any a module defines."""
    from smoothie_cli.errors import SmoothieError

    names: set[str] = set()
    todo = [SmoothieError]
    while todo:
        kind = todo.pop()
        names.add(kind.__name__)
        todo += kind.__subclasses__()
    grew = True
    while grew:  # classes defined on top of those, in the source
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                bases = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                    for b in getattr(node, "bases", [])
                }
                if isinstance(node, ast.ClassDef) and node.name not in names and bases & names:
                    names.add(node.name)
                    grew = True
    return names


def core_error_calls() -> list[tuple[str, int, ast.Call]]:
    """(module, line, call) of every construction of a SmoothieError (a raise, or one kept to raise later)
    outside the CLI."""
    trees = {
        name: ast.parse(path.read_text(encoding="utf-8"))
        for name, path in all_modules().items()
        if not name.startswith("smoothie_cli.cli")
    }
    kinds = error_classes(trees)
    calls = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if called in kinds:
                    calls.append((name, node.lineno, node))
    return calls


def test_core_errors_name_no_cli_flag() -> None:
    """The core says what is wrong with which setting; the CLI adds the flag (cli/errors.describe)."""
    found: list[str] = []
    used: set[tuple[str, str]] = set()
    for module, line, call in core_error_calls():
        for node in ast.walk(call):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in FLAG_WORD.findall(node.value):
                    if (module, flag) in ALLOWED_FLAGS:
                        used.add((module, flag))
                    else:
                        found.append(f"{module}:{line} names {flag}")
    assert not found, "core errors that name a CLI flag (give setting= instead):\n" + "\n".join(found)
    assert not set(ALLOWED_FLAGS) - used, (
        f"no longer needed, take off ALLOWED_FLAGS: {set(ALLOWED_FLAGS) - used}"
    )


def test_the_flag_finder_finds_flags() -> None:
    assert FLAG_WORD.findall("use --draft-quant none, or another -o") == ["--draft-quant", "-o"]
    assert FLAG_WORD.findall("non-UTF-8 text; a range like 4E00-9FFF, -1 or -inf; cross-fitted") == []


def test_every_setting_a_core_error_names_is_a_cli_flag() -> None:
    """describe() turns `setting` into a flag with flag_for: each literal one must be an option of some
    command (a setting given by a variable, like FinetuneSettings.check's loop, is checked by its tests)."""
    import typer

    from smoothie_cli.cli import app
    from smoothie_cli.cli.errors import flag_for

    flags: set[str] = set()
    todo = [typer.main.get_command(app)]
    while todo:  # every command and subcommand (Typer vendors Click: no click.Group to test against)
        command = todo.pop()
        flags |= {opt for param in command.params for opt in param.opts + param.secondary_opts}
        todo += getattr(command, "commands", {}).values()
    settings = {
        (keyword.value.value, f"{module}:{line}")
        for module, line, call in core_error_calls()
        for keyword in call.keywords
        if keyword.arg == "setting" and isinstance(keyword.value, ast.Constant) and keyword.value.value
    }
    wrong = sorted(
        f"{where}: setting '{setting}' → {flag_for(setting)}"
        for setting, where in settings
        if flag_for(setting) not in flags and setting not in ALLOWED_SETTINGS
    )
    assert not wrong, "no such flag (add an entry to cli/errors.FLAGS):\n" + "\n".join(wrong)
    assert {s for s, _ in settings} >= set(ALLOWED_SETTINGS)
