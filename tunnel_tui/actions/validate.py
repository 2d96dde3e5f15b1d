"""Validation: the step-by-step check of a connection, as an async stream of StepResult.

The CLI prints the stream (live log or JSON Lines); the TUI draws it. An unknown host
key is trusted with `accept_new_host_key`, or asked about through `on_host_key` (the
CLI asks on a terminal, the TUI with its host-key dialog).

When the caller's only store is the vault the agent holds (an SSH login after `vault
unlock`), the agent runs the check with its keys and streams the rows back
(agent/validation.py): the agent never hands a key out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

from tunnel_tui.actions.session import Session
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.model import SshEndpoint
from tunnel_tui.core.steps import StepResult

MAX_WAIT_MINUTES = 60

# (the hop "user@host:port", its "SHA256:..." fingerprint) -> trust it and save it?
HostKeyQuestion = Callable[[str, str], Awaitable[bool]]


def check_wait_minutes(minutes: float) -> float:
    """--wait-for-key MINUTES -> seconds (0 to 60 minutes), else UsageError."""
    if not 0 <= minutes <= MAX_WAIT_MINUTES:
        raise UsageError(
            f"--wait-for-key must be between 0 and {MAX_WAIT_MINUTES} minutes",
            field="wait-for-key",
        )
    return minutes * 60.0


async def validate(
    session: Session,
    name: str,
    *,
    accept_new_host_key: bool = False,
    accept_host_keys: Collection[str] = (),
    wait_for_key_seconds: float = 0,
    on_host_key: HostKeyQuestion | None = None,
) -> AsyncIterator[StepResult]:
    """Check connection `name` step by step (config ... query); stops at the first
    failure and marks the rest `skip`. An unknown name raises NotFoundError first.

    An unknown host key is trusted (and saved) when its fingerprint is in
    `accept_host_keys` ("SHA256:...", normalized) or with `accept_new_host_key` (any);
    with neither, `on_host_key` is asked."""
    from tunnel_tui import validate as runner
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.paths import known_hosts_path

    catalog = session.catalog()
    conn = await asyncio.to_thread(catalog.get, name)
    from tunnel_tui.actions.agent_keys import vault_only_in_agent

    if await asyncio.to_thread(vault_only_in_agent, catalog, session.home):
        from tunnel_tui.agent.validation import validate_in_agent

        rows = validate_in_agent(
            session.home, name,
            accept_new_host_key=accept_new_host_key, accept_host_keys=accept_host_keys,
            wait_for_key_seconds=wait_for_key_seconds,
            on_host_key=on_host_key if not (accept_new_host_key or accept_host_keys) else None,
            ssh_auth_sock=session.ssh_auth_sock or os.environ.get("SSH_AUTH_SOCK"),
        )
        async for step in rows:
            yield step
        return

    async def ask(hop: SshEndpoint, fingerprint: str) -> bool:
        assert on_host_key is not None
        return await on_host_key(hop.display, fingerprint)

    async for step in runner.run(
        conn,
        catalog,
        accept_new_host_key=accept_new_host_key,
        accept_host_keys=accept_host_keys,
        wait_for_key_seconds=wait_for_key_seconds,
        on_host_key=ask if on_host_key and not (accept_new_host_key or accept_host_keys) else None,
        known_hosts=KnownHosts(known_hosts_path(session.home)),
        ssh_auth_sock=session.ssh_auth_sock,  # None: this process's $SSH_AUTH_SOCK
    ):
        yield step
