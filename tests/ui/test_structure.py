"""The UI's shape: screens and widgets never import the App; no import cycles in
tunnel_tui.ui (module-level imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import tunnel_tui.ui

UI = Path(tunnel_tui.ui.__file__).parent


def _module(path: Path) -> str:
    rel = path.relative_to(UI.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_screens_and_widgets_never_import_the_app() -> None:
    for folder in ("screens", "widgets"):
        for path in (UI / folder).glob("*.py"):
            assert "tunnel_tui.ui.app" not in _imports(path, top_level_only=False), path


def test_no_import_cycles_in_the_ui() -> None:
    modules = {_module(p): p for p in UI.rglob("*.py")}
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, " -> ".join([*visiting[visiting.index(name):], name])
        if name in done:
            return
        visiting.append(name)
        for dep in graph[name]:
            visit(dep)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)
    assert len(graph) >= 15


def test_styles_use_theme_variables_only() -> None:
    import re

    css = (UI / "app.tcss").read_text()
    declarations = [line.split(":", 1)[1] for line in css.splitlines() if ":" in line
                    and not line.strip().startswith(("/*", "#", "."))]
    assert not [d for d in declarations if re.search(r"#[0-9a-fA-F]{3,8}\b", d)]
    for path in UI.rglob("*.py"):
        if path.name == "themes.py":
            continue  # the one place colours are defined: the app's own light theme
        assert not re.search(r"['\"]#[0-9a-fA-F]{6}['\"]", path.read_text()), path


def test_every_binding_has_an_id_so_it_can_be_rebound() -> None:
    from textual.binding import Binding

    from tunnel_tui.ui.app import TunnelTuiApp
    from tunnel_tui.ui.screens import (
        confirm,
        connections,
        host_key,
        keys,
        public_key,
        rotation,
        tunnel_form,
        validation,
        vault,
    )
    from tunnel_tui.ui.screens import help as help_screen

    classes = [TunnelTuiApp]
    for module in (confirm, connections, help_screen, host_key, keys, public_key, rotation,
                   tunnel_form, validation, vault):
        classes += [v for v in vars(module).values() if isinstance(v, type)
                    and v.__module__ == module.__name__ and hasattr(v, "BINDINGS")]
    for cls in classes:
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding) and binding.id, (cls, binding)
