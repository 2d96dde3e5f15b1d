"""No import cycles among tunnel_tui's modules (STYLE.md: harlequin's 20-file cycle
through its app is what to avoid).

Module-level imports only: an import inside a function or under `if TYPE_CHECKING:`
runs later or never, so it cannot take part in an import-time cycle. The layer
contracts themselves are import-linter's job (pyproject.toml, run by CI).
"""

from __future__ import annotations

import ast
from pathlib import Path

import tunnel_tui

PACKAGE = Path(tunnel_tui.__file__).parent


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _module_level_imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            # `from package import module` depends on that module.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: _module_level_imports(path, modules) - {name} for name, path in paths.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_stack:
            return [*stack[stack.index(name):], name]
        if name in done:
            return None
        stack.append(name)
        on_stack.add(name)
        for dep in sorted(graph[name]):
            found = visit(dep)
            if found:
                return found
        stack.pop()
        on_stack.discard(name)
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return None


def test_the_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert len(graph) > 50
    assert "tunnel_tui.core.model" in graph["tunnel_tui.core.config"]


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
