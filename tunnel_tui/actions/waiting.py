"""Hand the wait for a key to the agent: `up NAME --wait-for-key MINUTES`, `add ...
--wait-for-key MINUTES` and the app's "wait for my key" (DESIGN.md, "Waiting for the
key"). The agent then keeps trying on its own; closing the terminal or the app does
not end the wait.

The caller sends what the agent needs, read in its own session as for `up`: the
private keys the agent does not hold, and the database password (for validate's
checks once the key is in). A host key is never trusted by the agent: consent given
here (`--accept-host-key SHA256:…`, or `--accept-new-host-key` for scripts) is applied
in this process first, exactly as `validate` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import TYPE_CHECKING

from tunnel_tui.core.errors import HostKeyError, SecretStoreError, UsageError
from tunnel_tui.core.formatting import local_clock
from tunnel_tui.core.status import TunnelState, TunnelStatus

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.model import Connection
    from tunnel_tui.core.secret import Secret

__all__ = [
    "MAX_MINUTES",
    "MIN_MINUTES",
    "check_minutes",
    "up_wait_for_key",
    "up_wait_for_key_async",
    "waiting_line",
]

MIN_MINUTES = 1
MAX_MINUTES = 60


def check_minutes(minutes: float, flag: str = "--wait-for-key") -> float:
    """Seconds for `minutes` (1–60, as validate's), or UsageError (exit 2)."""
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise UsageError(
            f"{flag} must be between {MIN_MINUTES} and {MAX_MINUTES} minutes (got {minutes:g})",
            field="wait-for-key",
        )
    return minutes * 60.0


def waiting_line(status: TunnelStatus) -> str:
    """"prod waiting for its key on tunnel@bastion:22 until 14:05" (local time)."""
    until = local_clock(status.wait_until) if status.wait_until is not None else "?"
    return f"{status.name} waiting for its key on {status.bastion} until {until}"


def up_wait_for_key(
    session: Session,
    name: str,
    *,
    seconds: float,
    accept_host_keys: Collection[str] = (),
    accept_new_host_key: bool = False,
    timeout: float = 60.0,
) -> TunnelStatus:
    """Ask the agent to wait up to `seconds` for NAME's key. Returns at once with the
    `waiting-for-key` status (or `up`, when the key already works). A host key that is
    not trusted (and not accepted here) is refused: HostKeyError naming the fingerprint
    and `--accept-host-key`."""
    from tunnel_tui.actions.tunnels import (
        SecretsHeld,
        _caller_keys,
        _connection,
        _held,
        _ssh_auth_sock,
    )
    from tunnel_tui.agent.client import ensure_agent
    from tunnel_tui.agent.protocol import SecretsNeeded

    conn = _connection(session, name)  # unknown name: exit 2 before starting an agent
    if accept_host_keys or accept_new_host_key:
        asyncio.run(_trust_host_keys(session, conn, accept_host_keys, accept_new_host_key))
    client = ensure_agent(session.home)
    sock = _ssh_auth_sock(session)
    held = _held(client, name)
    keys, no_keys = _caller_keys(session, held)
    password = _db_password(session, name) if keys is not None else None
    try:
        return client.up(
            name, timeout=timeout, keys=keys, no_keys=no_keys, ssh_auth_sock=sock,
            wait_for_key=seconds, db_password=password,
        )
    except SecretsNeeded:
        # Keys the agent held a moment ago went with a tunnel: send them all, once.
        everything = SecretsHeld({k: False for k in held.keys}, held.vault_unlocked)
        keys, no_keys = _caller_keys(session, everything)
        return client.up(
            name, timeout=timeout, keys=keys, no_keys=no_keys, ssh_auth_sock=sock,
            wait_for_key=seconds, db_password=password,
        )


async def up_wait_for_key_async(
    session: Session,
    name: str,
    *,
    seconds: float,
    accept_host_keys: Collection[str] = (),
    accept_new_host_key: bool = False,
) -> TunnelStatus:
    """The same, for the app (in a thread: it reads the keyring and may trust a key)."""
    return await asyncio.to_thread(
        up_wait_for_key, session, name, seconds=seconds,
        accept_host_keys=accept_host_keys, accept_new_host_key=accept_new_host_key,
    )


def is_waiting(status: TunnelStatus) -> bool:
    return status.state is TunnelState.WAITING_FOR_KEY


def _db_password(session: Session, name: str) -> Secret | None:
    try:
        return session.catalog().db_password(name)
    except SecretStoreError:
        return None


async def _trust_host_keys(
    session: Session, conn: Connection, accept_keys: Collection[str], accept_new: bool
) -> None:
    """Run validate up to the last hop's host key with the user's consent, so the key
    is saved before the agent (which never trusts one) starts waiting. A key that does
    not match `--accept-host-key` is refused here; anything else (the bastion not
    reachable yet, the key not accepted yet) is the agent's to wait out."""
    from tunnel_tui.core import paths
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.steps import StepStatus
    from tunnel_tui.engine.errors import HostKeyProblem
    from tunnel_tui.validate import runner

    hops = len(conn.hops)
    trusted = 0
    causes: list[BaseException] = []
    failed = None
    results = runner.run(
        conn, session.catalog(),
        accept_new_host_key=accept_new, accept_host_keys=frozenset(accept_keys),
        known_hosts=KnownHosts(paths.known_hosts_path(session.home)),
        on_failure=causes.append,
    )  # fmt: skip
    try:
        async for result in results:  # on to the end: a failure's cause comes after it
            if result.step == "host-key" and result.status is StepStatus.OK:
                trusted += 1
                if trusted == hops:
                    return
            elif result.status is StepStatus.FAIL and failed is None:
                failed = result
    finally:
        await results.aclose()  # type: ignore[attr-defined]  # closes its SSH links
    if failed is not None and any(isinstance(c, HostKeyProblem) for c in causes):
        raise HostKeyError(failed.detail, hint=failed.hint)
