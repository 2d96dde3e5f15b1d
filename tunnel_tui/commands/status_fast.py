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
    from tunnel_tui.commands.fast_argv import plain_form

    form = plain_form(argv, "status")
    if form is None:
        return None
    name, as_json = form
    from tunnel_tui.agent.snapshot import statuses_now  # the table's module: not for --json
    from tunnel_tui.core.errors import TunnelTuiError

    try:
        statuses, running = statuses_now(None, name)
    except TunnelTuiError as exc:
        sys.stderr.write(exc.render() + "\n")
        return exc.exit_code
    if as_json:
        from tunnel_tui.agent.snapshot import status_objects

        sys.stdout.write(json.dumps(status_objects(None, name, statuses, running)) + "\n")
    else:
        from tunnel_tui.commands.status_table import render_table

        sys.stdout.write(render_table(statuses, running=running) + "\n")
    sys.stdout.flush()
    return 0

