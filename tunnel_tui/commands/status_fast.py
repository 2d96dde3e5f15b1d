"""`tunnel-tui status [NAME] [--json]` answered without click.

`status` is what people put in shell prompts, tmux status lines and loops; click alone
costs more to import than the whole answer. `run(argv)` handles exactly the plain forms
and returns None for anything else (--watch, --help, --debug, typos), which then goes
through click as usual, with identical output and exit codes.
"""

from __future__ import annotations

import json
import sys


def run(argv: list[str]) -> int | None:
    """The exit code after printing the status, or None when click should handle argv."""
    if not argv or argv[0] != "status":
        return None
    as_json = False
    names: list[str] = []
    for arg in argv[1:]:
        if arg == "--json":
            as_json = True
        elif arg.startswith("-") or names:
            return None
        else:
            names.append(arg)
    from tunnel_tui.agent.snapshot import statuses_now  # the table's module: not for --json
    from tunnel_tui.core.errors import TunnelTuiError

    try:
        statuses, running = statuses_now(None, names[0] if names else None)
    except TunnelTuiError as exc:
        sys.stderr.write(exc.render() + "\n")
        return exc.exit_code
    if as_json:
        from tunnel_tui.agent.snapshot import status_objects

        name = names[0] if names else None
        sys.stdout.write(json.dumps(status_objects(None, name, statuses, running)) + "\n")
    else:
        from tunnel_tui.commands.status_table import render_table

        sys.stdout.write(render_table(statuses, running=running) + "\n")
    sys.stdout.flush()
    return 0

