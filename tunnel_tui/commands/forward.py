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
    from tunnel_tui.commands.connections import open_catalog
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.engine import TunnelEngine

    catalog = open_catalog()
    conn = catalog.get(name)
    key_ids = {conn.key_id, *(h.key_id for h in conn.jumps if h.key_id)}
    keys = {key_id: await asyncio.to_thread(catalog.client_key, key_id) for key_id in key_ids}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = TunnelEngine(KnownHosts())
    failed = False
    last: tuple[TunnelState, str | None] | None = None

    def on_status(status: TunnelStatus) -> None:
        nonlocal last, failed
        key = (status.state, status.last_error)
        if key == last or status.state is TunnelState.CONNECTING:
            return  # counters only
        last = key
        if status.state is TunnelState.FAILED:
            failed = True
            stop.set()
        click.echo(_line(status), err=status.state is TunnelState.FAILED)

    try:
        status = await engine.start(conn, keys, accept_new_host_key=accept_new,
                                    accept_host_keys=accept_keys)
        if status.local_port != conn.local_port and status.local_port is not None:
            # Remember the port so the next run (and the agent) reuse it.
            await asyncio.to_thread(catalog.set_local_port, name, status.local_port)
        click.echo(f"{name} up on {status.local_host}:{status.local_port}")
        last = (status.state, status.last_error)
        engine.subscribe(on_status)
        await stop.wait()
    finally:
        await engine.aclose()
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
    from tunnel_tui.core.known_hosts import parse_fingerprints
    from tunnel_tui.engine.loop import install_uvloop

    accept = parse_fingerprints(accept_host_keys)
    install_uvloop()
    sys.exit(asyncio.run(_forward(name, accept_new_host_key, accept)))
