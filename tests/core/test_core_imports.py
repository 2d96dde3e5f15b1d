"""`tunnel_tui.core` must import without Textual or asyncssh (DESIGN.md layers)."""

import json
import pkgutil
import subprocess
import sys

import tunnel_tui.core


def test_core_imports_without_textual_or_asyncssh() -> None:
    modules = [m.name for m in pkgutil.iter_modules(tunnel_tui.core.__path__, "tunnel_tui.core.")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'asyncssh'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    assert len(modules) >= 5
