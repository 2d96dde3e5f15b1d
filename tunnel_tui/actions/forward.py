"""forward: hold one tunnel in this process (no agent) until told to stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tunnel_tui.actions.session import Session
from tunnel_tui.core.errors import SecretStoreError
from tunnel_tui.core.status import TunnelState, TunnelStatus


async def hold(
    session: Session,
    name: str,
    stop: asyncio.Event,
    *,
    accept_new_host_key: bool = False,
    accept_host_keys: frozenset[str] = frozenset(),
    on_up: Callable[[TunnelStatus], None],
    on_change: Callable[[TunnelStatus], None],
) -> bool:
    """Bring `name` up in this process, call `on_up` once it listens and `on_change` on
    every later state change (not on counters), until `stop` is set or the tunnel fails
    for good. Returns True if it failed. The local port picked is saved for next time."""
    from tunnel_tui.actions.agent_keys import vault_only_in_agent
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.paths import known_hosts_path
    from tunnel_tui.engine import TunnelEngine

    catalog = session.catalog()
    conn = await asyncio.to_thread(catalog.get, name)
    key_ids = {conn.key_id, *(h.key_id for h in conn.jumps if h.key_id)}
    if not all(catalog.key(k).in_agent for k in key_ids) and await asyncio.to_thread(
        vault_only_in_agent, catalog, session.home
    ):
        raise SecretStoreError(
            f"forward holds {name} in this process, and only the agent holds the vault "
            "(it never hands a key out)",
            hint=f"let the agent hold it: tunnel-tui up {name}",
        )
    keys = {key_id: await asyncio.to_thread(catalog.client_key, key_id) for key_id in key_ids}
    engine = TunnelEngine(KnownHosts(known_hosts_path(session.home)))
    failed = False
    last: tuple[TunnelState, str | None] | None = None

    def changed(status: TunnelStatus) -> None:
        nonlocal last, failed
        key = (status.state, status.last_error)
        if key == last or status.state is TunnelState.CONNECTING:
            return  # counters only
        last = key
        if status.state is TunnelState.FAILED:
            failed = True
            stop.set()
        on_change(status)

    try:
        status = await engine.start(
            conn, keys, accept_new_host_key=accept_new_host_key, accept_host_keys=accept_host_keys
        )
        if status.local_port != conn.local_port and status.local_port is not None:
            # Remember the port so the next run (and the agent) reuse it.
            await asyncio.to_thread(catalog.set_local_port, name, status.local_port)
        on_up(status)
        last = (status.state, status.last_error)
        engine.subscribe(changed)
        await stop.wait()
    finally:
        await engine.aclose()
    return failed
