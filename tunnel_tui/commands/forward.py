"""`forward NAME`: hold one tunnel in the foreground until Ctrl-C (for scripts).

Prints `NAME up on 127.0.0.1:PORT` once listening, then each state change
(reconnecting, up again, failed) with its cause. Exit 0 on Ctrl-C/SIGTERM,
1 if the tunnel cannot start or fails for good.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime

import click

from tunnel_tui.commands.completion import connection_names
from tunnel_tui.commands.prompts import cli_session
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.status import TunnelState, TunnelStatus


def _line(status: TunnelStatus) -> str:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    text = f"{stamp} {status.name} {status.state.value}"
    if status.state is TunnelState.UP:
        text += f" on {status.local_host}:{status.local_port}"
    if status.last_error and status.state is not TunnelState.UP:
        text += f": {terminal_text(status.last_error)}"  # server text: controls escaped
    if status.hint and status.state is TunnelState.FAILED:
        text += f"\n  hint: {terminal_text(status.hint)}"
    return text


async def _forward(name: str, accept_new: bool, accept_keys: frozenset[str] = frozenset()) -> int:
    from tunnel_tui.actions.forward import hold

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_up(status: TunnelStatus) -> None:
        click.echo(f"{name} up on {status.local_host}:{status.local_port}")

    def on_change(status: TunnelStatus) -> None:
        click.echo(_line(status), err=status.state is TunnelState.FAILED)

    failed = await hold(
        cli_session(), name, stop, accept_new_host_key=accept_new, accept_host_keys=accept_keys,
        on_up=on_up, on_change=on_change,
    )
    if not failed:
        click.echo(f"{name} down")
    return 1 if failed else 0


@click.command(name="forward")
@click.argument("name", shell_complete=connection_names)
@click.option("--accept-host-key", "accept_host_keys", multiple=True, metavar="SHA256:…",
              help="Trust an unknown host key with exactly this fingerprint (the one you "
                   "checked) and save it. Once per hop.")
@click.option("--accept-new-host-key", is_flag=True,
              help="Trust ANY unknown host key and save it (prefer --accept-host-key).")
def forward(name: str, accept_host_keys: tuple[str, ...], accept_new_host_key: bool) -> None:
    """Hold NAME's tunnel in the foreground until Ctrl-C, printing state changes."""
    from tunnel_tui.actions.runner import run
    from tunnel_tui.core.known_hosts import parse_fingerprints

    accept = parse_fingerprints(accept_host_keys)
    sys.exit(run(_forward(name, accept_new_host_key, accept)))
