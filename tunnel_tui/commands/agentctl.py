"""`up`, `down`, `status` and `agent`: the CLI side of the background agent.

`status` is the hot path (people run it in loops and prompts): it imports only
click, the agent client and `core`, and needs no keyring or D-Bus.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tunnel_tui.commands.completion import connection_names
from tunnel_tui.commands.status_table import WIDTH, render_table
from tunnel_tui.commands.up_fast import terminal_session
from tunnel_tui.commands.up_fast import up_line as _up_line
from tunnel_tui.core.status import TunnelStatus

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session

__all__ = ["WIDTH", "agent", "down", "render_table", "status", "up"]


VAULT_LOCKED_AGAIN = "the vault it held is locked again: tunnel-tui vault unlock"


def _home() -> Path | None:
    return None  # paths.home_dir() (TUNNEL_TUI_HOME or platformdirs) decides


@click.command()
@click.argument("name", shell_complete=connection_names)
@click.option("--json", "as_json", is_flag=True, help="Print the status object.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the tunnel.",
)
@click.option(
    "--wait-for-key",
    "wait_minutes",
    type=float,
    metavar="MINUTES",
    help="1-60: return at once; the agent keeps trying until the bastion accepts the "
    "key, then brings the tunnel up by itself.",
)
@click.option("--accept-host-key", "accept_host_keys", multiple=True, metavar="SHA256:…",
              help="Trust an unknown host key with exactly this fingerprint (the one you "
                   "checked) and save it. Once per hop.")
@click.option("--accept-new-host-key", is_flag=True,
              help="With --wait-for-key: trust any new host key (for scripts; prefer "
                   "--accept-host-key).")
def up(
    name: str,
    as_json: bool,
    timeout: float,
    wait_minutes: float | None,
    accept_host_keys: tuple[str, ...],
    accept_new_host_key: bool,
) -> None:
    """Bring tunnel NAME up in the agent (starting the agent if needed).

    Returns once SSH auth succeeded and the local port listens, printing
    `NAME up on 127.0.0.1:PORT` (the port is picked on the first up, then kept).
    The tunnel stays up after this command exits, until `down` or `agent stop`.

    \b
      tunnel-tui up prod        # prints: prod up on 127.0.0.1:54321
      psql -h 127.0.0.1 -p 54321 -U app appdb
      tunnel-tui down prod

    A failure exits 1 with the reason and a hint (an unknown host key: its
    fingerprint; check it, then `up NAME --accept-host-key SHA256:…`).

    With --wait-for-key MINUTES it returns at once, printing `NAME waiting for its
    key on BASTION until HH:MM`; the agent retries, brings the tunnel up when the
    key is accepted and notifies. The host key must be trusted (or accepted here).
    """
    from tunnel_tui.actions import tunnels
    from tunnel_tui.core.known_hosts import parse_fingerprints

    accept = parse_fingerprints(accept_host_keys)  # malformed: exit 2, nothing started
    if wait_minutes is not None or accept_new_host_key:
        start_wait(name, wait_minutes, accept, accept_new_host_key, as_json)
        return
    status = tunnels.up(_session(), name, timeout=timeout, accept_host_keys=accept).status
    if as_json:
        click.echo(json.dumps(status.to_json()))
    else:
        click.echo(_up_line(status))


def start_wait(
    name: str,
    wait_minutes: float | None,
    accept_host_keys: Collection[str],
    accept_new_host_key: bool,
    as_json: bool,
    *,
    echo: bool = True,
) -> TunnelStatus:
    """`up --wait-for-key` (and `add --wait-for-key`): hand the wait to the agent and
    print the waiting line (or the status object). `accept_host_keys`: fingerprints
    already checked by `parse_fingerprints`."""
    from tunnel_tui.actions import waiting
    from tunnel_tui.core.errors import UsageError

    if wait_minutes is None:
        raise UsageError(
            "--accept-new-host-key goes with --wait-for-key on up",
            field="accept-new-host-key",
            hint="check the fingerprint and use --accept-host-key SHA256:… instead",
        )
    seconds = waiting.check_minutes(wait_minutes)
    status = waiting.up_wait_for_key(
        _session(), name, seconds=seconds,
        accept_host_keys=accept_host_keys, accept_new_host_key=accept_new_host_key,
    )  # fmt: skip
    if not echo:
        pass
    elif as_json:
        click.echo(json.dumps(status.to_json()))
    elif waiting.is_waiting(status):
        click.echo(waiting.waiting_line(status))
    else:
        click.echo(_up_line(status))
    return status


def _session() -> Session:
    """This terminal's session: its keyring, else the vault (asked for on a terminal)."""
    return terminal_session()


@click.command()
@click.argument("name", shell_complete=connection_names)
@click.option("--json", "as_json", is_flag=True, help="Print the status object.")
def down(name: str, as_json: bool) -> None:
    """Take tunnel NAME down (its local port stops listening; open database sessions
    through it end). Taking down a tunnel that is not up is not an error."""
    from tunnel_tui.actions import tunnels
    from tunnel_tui.actions.session import Session

    status = tunnels.down(Session(_home()), name)
    if as_json:
        click.echo(json.dumps(status.to_json()))
    else:
        click.echo(f"{status.name} {status.state.value}")


@click.command()
@click.argument("name", required=False, shell_complete=connection_names)
@click.option("--json", "as_json", is_flag=True, help="An array of status objects.")
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh every second until Ctrl-C (with --json: the array, once a second).",
)
def status(name: str | None, as_json: bool, watch: bool) -> None:
    """Show tunnel states (all connections, or NAME). Needs no keyring, no D-Bus:
    works from an SSH login too.

    \b
    --json: an array (also for NAME) of objects with
      name, state (connecting|up|reconnecting|waiting-for-key|waiting-for-secret|
      failed|down), local_host, local_port, bastion "user@host:port", target
      "host:port" as the bastion sees it, since (ISO 8601 UTC or null), bytes_in
      (database -> you), bytes_out, channels, reconnects, last_error (or null),
      hint (or null), wait_until (ISO 8601 UTC or null: when a wait for the key ends).
    With NAME, also history: {interval, window, bytes_in [per second], bytes_out,
      channels, reconnects [{time, cause, downtime}], reconnecting_since} for the
      last 10 minutes, or null when the tunnel is not live.
    With no agent running, every configured connection is listed as down.
    """
    if watch:
        _watch(name, as_json)
        return
    statuses, running = _statuses(name)
    if as_json:
        from tunnel_tui.agent.snapshot import status_objects

        click.echo(json.dumps(status_objects(_home(), name, statuses, running)))
        return
    click.echo(render_table(statuses, running=running))


def _statuses(name: str | None) -> tuple[list[TunnelStatus], bool]:
    from tunnel_tui.actions import tunnels
    from tunnel_tui.actions.session import Session

    snapshot = tunnels.status_snapshot(Session(_home()), name)
    return snapshot.statuses, snapshot.agent_running


WATCH_SECONDS = 1.0


def _watch(name: str | None, as_json: bool) -> None:
    """Print the statuses again every second until Ctrl-C: the same array as
    `status --json` (one line each), or the table under a header with the time."""
    import time

    next_at = time.monotonic()
    try:
        while True:
            statuses, running = _statuses(name)
            _redraw({s.name: s for s in statuses}, running, as_json)
            next_at += WATCH_SECONDS
            time.sleep(max(0.0, next_at - time.monotonic()))  # a CLI loop, not async code
    except KeyboardInterrupt:
        return


def _redraw(current: dict[str, TunnelStatus], running: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([s.to_json() for s in current.values()]))
        return
    from datetime import datetime

    if sys.stdout.isatty():
        click.echo("\x1b[H\x1b[2J", nl=False)
    now = datetime.now().astimezone()
    click.echo(f"tunnel-tui status · {now:%Y-%m-%d %H:%M:%S} · every 1 s · Ctrl-C to stop")
    click.echo("")
    click.echo(render_table(list(current.values()), running=running))
    if not sys.stdout.isatty():
        click.echo("")


# -- the agent itself -----------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option("--foreground", is_flag=True, help="Also log to stderr (the default: run here).")
@click.pass_context
def agent(ctx: click.Context, foreground: bool) -> None:
    """Run the agent in the foreground (Ctrl-C stops it and its tunnels)."""
    if ctx.invoked_subcommand is not None:
        return
    from tunnel_tui.agent.daemon import run

    ctx.exit(run(_home(), to_stderr=True))


def _going_down(names: list[str]) -> None:
    """Said before the agent stops: which tunnels close with it."""
    if names:
        click.echo(f"taking down: {', '.join(names)} (bring them up again with `up`)")


@agent.command("stop")
def agent_stop() -> None:
    """Stop the running agent (its tunnels close)."""
    from tunnel_tui.actions import tunnels
    from tunnel_tui.actions.session import Session

    stopped = tunnels.stop_agent(Session(_home()), before_stop=_going_down)
    if stopped is None:
        click.echo("the agent is not running")
        return
    click.echo(f"agent {stopped.pid} stopping")
    if stopped.vault_locked:
        click.echo(VAULT_LOCKED_AGAIN)


@agent.command("restart")
def agent_restart() -> None:
    """Stop the running agent (saying first which tunnels go down) and start this
    version's: what to run after an upgrade ("the running agent is older")."""
    from tunnel_tui.actions import tunnels
    from tunnel_tui.actions.session import Session

    result = tunnels.restart_agent(Session(_home()), before_stop=_going_down)
    if result.old_pid is None:
        click.echo(f"agent {result.new_pid} started")
    else:
        click.echo(f"agent {result.old_pid} stopped; agent {result.new_pid} started")
    if result.vault_locked:
        click.echo(VAULT_LOCKED_AGAIN)
