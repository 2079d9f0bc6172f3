"""The house's layers, read from the source with ast: no import cycle between modules, lazy imports included.

(tests/test_generation.py checks the same between the package's parts; this is the finer graph.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "smoothie_cli"

# Cycles that another branch of work removes; each entry is one strongly connected set of modules. Empty it
# as they go: the test fails when a listed cycle no longer exists, so the list cannot go stale.
KNOWN_CYCLES: list[set[str]] = [
    # probe.py reads gate.py's prompt batches, gate.py loads probes
    {"smoothie_cli.cautious.gate", "smoothie_cli.cautious.probe"},
    # loading → quantize → ship → quantize
    {"smoothie_cli.cautious.loading", "smoothie_cli.cautious.quantize", "smoothie_cli.cautious.ship"},
]


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
