"""helpers is layered without import cycles: profile at the bottom; data and models side by side
(neither knows the other); training knows neither; compression on top."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"


def import_graph(root: Path = HELPERS) -> dict[str, set[str]]:
    """``{module: {helpers modules it imports}}`` read from the source (any import, even in a function)."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        mod = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "helpers":
                deps.add(node.module)
                if node.module == "helpers":
                    deps |= {f"helpers.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == "helpers"}
        graph[mod] = {d for d in deps if d != mod and not mod.startswith(d + ".")}
    return graph


def _top(mod: str) -> str:
    return ".".join(mod.split(".")[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle between top-level helpers modules (``helpers.X``), or None."""
    top: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        top.setdefault(_top(mod), set()).update(_top(d) for d in deps if _top(d) != _top(mod))
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(top.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for node in sorted(top):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_cycle_finder_finds_one(tmp_path):
    pkg = tmp_path / "helpers"
    pkg.mkdir()
    (pkg / "a.py").write_text("from helpers.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from helpers import a\n")
    assert find_cycle(import_graph(pkg)) is not None


@pytest.mark.parametrize("module, forbidden", [
    ("helpers.profile", {"helpers.data", "helpers.models", "helpers.training", "helpers.download",
                         "helpers.compression"}),
    ("helpers.training", {"helpers.data", "helpers.models", "helpers.compression", "helpers.world"}),
    ("helpers.data", {"helpers.models", "helpers.training", "helpers.compression"}),
    ("helpers.models", {"helpers.data", "helpers.training", "helpers.compression"}),
])
def test_layers(module, forbidden):
    deps = {_top(d) for mod, ds in import_graph().items() if _top(mod) == module for d in ds}
    assert not deps & forbidden, f"{module} imports {sorted(deps & forbidden)}"
