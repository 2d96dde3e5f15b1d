"""The console-script entry point: `status` and `up NAME` answered without importing
click (status is what people put in prompts and loops; `up` is timed against spawning
`ssh -L`), everything else through the click CLI."""

from __future__ import annotations

import sys


def main() -> object:
    code = _fast(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from tunnel_tui.cli import main as cli_main

    return cli_main()


def _fast(argv: list[str]) -> int | None:
    """The exit code of a plain `status`/`up` form, or None: click handles argv."""
    command = argv[0] if argv else None
    if command == "status":
        from tunnel_tui.commands.status_fast import run

        return run(argv)
    if command == "up":
        from tunnel_tui.commands.up_fast import run as run_up

        return run_up(argv)
    return None
