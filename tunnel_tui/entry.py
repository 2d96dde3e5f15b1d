"""The console-script entry point: `status` answered without importing click (it is
what people put in prompts and loops), everything else through the click CLI."""

from __future__ import annotations

import sys


def main() -> object:
    from tunnel_tui.commands.status_fast import run

    code = run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from tunnel_tui.cli import main as cli_main

    return cli_main()
