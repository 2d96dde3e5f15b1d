"""`tunnel-tui up NAME [--json]` answered without click.

`up` is timed against spawning `ssh -L` (docs/PERF-WORK.md, "up path"): the command's
own start-up is most of what it costs once the agent runs. `run(argv)` handles exactly
the plain forms and returns None for anything else (--timeout, --wait-for-key,
--accept-host-key, --help, typos), which then goes through click as usual. Output,
errors and exit codes are the same as `commands/agentctl.py:up`, which shares
`up_line` and `terminal_session` with this module.

On the way: `actions.tunnels.up` asks the agent first which keys it holds; only when it
lacks one does this process read the keyring (or the vault).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.secret import Secret
    from tunnel_tui.core.status import TunnelStatus

ABORTED = 130  # Ctrl-C, or a prompt given up: what cli.main exits with


def run(argv: list[str]) -> int | None:
    """The exit code after bringing NAME up, or None when click should handle argv."""
    from tunnel_tui.commands.fast_argv import plain_form

    form = plain_form(argv, "up")
    if form is None:
        return None
    name, as_json = form
    if name is None:
        return None
    from tunnel_tui.core.errors import TunnelTuiError

    try:
        return _up(name, as_json)
    except TunnelTuiError as exc:
        sys.stderr.write(exc.render() + "\n")
        return exc.exit_code
    except (KeyboardInterrupt, EOFError):
        sys.stderr.write("\nAborted.\n")  # click's blank line after ^C, then cli.main's
        return ABORTED
    except Exception as exc:
        click = sys.modules.get("click")  # imported only if the vault prompt ran
        if click is not None and isinstance(exc, click.exceptions.Abort):
            sys.stderr.write("Aborted.\n")
            return ABORTED
        raise


def _up(name: str, as_json: bool) -> int:
    from tunnel_tui.actions import tunnels

    status = tunnels.up(terminal_session(), name).status
    if as_json:
        import json

        text = json.dumps(status.to_json())
    else:
        text = up_line(status)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0


def terminal_session() -> Session:
    """This terminal's session: its keyring, else the vault (asked for on a terminal)."""
    from tunnel_tui.actions.session import Session

    return Session(None, ask_vault_passphrase=_ask_vault_passphrase)


def _ask_vault_passphrase() -> Secret | None:
    if not sys.stdin.isatty():
        return None
    import click  # only for this prompt (hidden input, asks again on an empty line)

    from tunnel_tui.core.secret import Secret

    return Secret(click.prompt("Vault passphrase", hide_input=True, err=True))


def up_line(status: TunnelStatus) -> str:
    """`NAME up on 127.0.0.1:PORT` (or the state it is in, or the wait for its key)."""
    from tunnel_tui.core.status import TunnelState

    where = f"{status.local_host}:{status.local_port}"
    if status.state is TunnelState.UP:
        return f"{status.name} up on {where}"
    if status.state is TunnelState.WAITING_FOR_KEY:  # `up` while the agent waits
        from tunnel_tui.actions.waiting import waiting_line

        return waiting_line(status)
    return f"{status.name} {status.state.value} on {where}"
