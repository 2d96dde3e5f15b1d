"""Tunnels in the agent: up, down, the status snapshot and the event stream — the one
implementation `commands/agentctl.py` and the TUI (`ui/services.py`) both call.

`up` resolves the private keys in the caller's session (DESIGN.md, "Where a secret
comes from"): it first asks the agent which keys of NAME it already holds (no secret
crosses for that), reads the caller's keyring (or the vault unlocked here) only for the
others, and sends them with the request. With no keyring and no vault here (a plain
SSH login) it says so, and the agent uses its own store. `down`, `status` and `events`
never open a secret store.

Blocking functions (the CLI calls them directly; the TUI through the `*_async`
wrappers, which run them in a thread) and nothing of click or Textual.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from tunnel_tui.core.errors import SecretStoreError
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelStatus

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.agent.client import AgentClient
    from tunnel_tui.core.history import TunnelHistory
    from tunnel_tui.core.model import Connection

__all__ = [
    "SecretsHeld",
    "SecretsSource",
    "StatusSnapshot",
    "UpResult",
    "down",
    "AgentRestarted",
    "AgentStopped",
    "down_async",
    "events",
    "events_async",
    "history_async",
    "restart_agent",
    "secrets_held",
    "status_snapshot",
    "status_snapshot_async",
    "stop_agent",
    "up",
    "up_async",
]


class SecretsSource(Enum):
    AGENT_HELD = "held by the agent"  # a live tunnel there already uses every key
    CALLER = "this session"  # read here (keyring or the vault unlocked here) and sent
    AGENT_STORE = "the agent's own store"  # no keyring or vault here: the agent read them


@dataclass(frozen=True)
class UpResult:
    status: TunnelStatus
    secrets: SecretsSource


@dataclass(frozen=True)
class StatusSnapshot:
    statuses: list[TunnelStatus]
    agent_running: bool  # False: every configured connection, all down


@dataclass(frozen=True)
class SecretsHeld:
    """What the agent holds for one tunnel: booleans only, never a secret."""

    keys: dict[str, bool] = field(default_factory=dict)
    vault_unlocked: bool = False

    @property
    def all(self) -> bool:
        return all(self.keys.values())

    @property
    def missing(self) -> list[str]:
        return [key_id for key_id, held in self.keys.items() if not held]


# -- up ---------------------------------------------------------------------------------


def up(
    session: Session, name: str, *, timeout: float = 30.0,
    accept_host_keys: Collection[str] = (), lease_id: str | None = None,
) -> UpResult:
    """Bring NAME up in the agent (started if needed); returns once SSH auth succeeded
    and the local port listens. NotFoundError (exit 2) before starting anything for an
    unknown NAME; TunnelTuiError (exit 1) with the reason and a hint otherwise.
    `accept_host_keys`: fingerprints the user checked; an unknown host key with one of
    them is trusted and saved (`up --accept-host-key`). `lease_id`: exec's lease (the
    tunnel then stays the leases', see actions/exec.py)."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning, ensure_agent
    from tunnel_tui.agent.protocol import AgentVersionMismatch, SecretsNeeded

    client = AgentClient(session.home)
    try:
        held = _held(client, name)  # a running agent checks NAME (exit 2) itself
    except AgentNotRunning:
        _connection(session, name)  # unknown name: exit 2 before starting an agent
        client = ensure_agent(session.home)
        held = _held(client, name)
    except AgentVersionMismatch:
        _connection(session, name)  # an unknown name says so first, whatever runs
        raise
    sock = _ssh_auth_sock(session)
    if held.all:
        try:
            status = client.up(name, timeout=timeout, keys={}, ssh_auth_sock=sock,
                               accept_host_keys=accept_host_keys, lease_id=lease_id)
            return UpResult(status, SecretsSource.AGENT_HELD)
        except SecretsNeeded as exc:  # the tunnel holding them went down meanwhile
            held = SecretsHeld({k: k not in exc.missing for k in held.keys}, held.vault_unlocked)
    keys, no_keys = _caller_keys(session, held)
    source = SecretsSource.CALLER if keys is not None else SecretsSource.AGENT_STORE
    try:
        status = client.up(name, timeout=timeout, keys=keys, no_keys=no_keys,
                           ssh_auth_sock=sock, accept_host_keys=accept_host_keys, lease_id=lease_id)
    except SecretsNeeded as exc:
        # Keys the agent held a moment ago went with a tunnel: send those too, once.
        again = SecretsHeld({k: k not in exc.missing for k in held.keys}, held.vault_unlocked)
        keys, no_keys = _caller_keys(session, again)
        status = client.up(name, timeout=timeout, keys=keys, no_keys=no_keys,
                           ssh_auth_sock=sock, accept_host_keys=accept_host_keys, lease_id=lease_id)
    return UpResult(status, source)


def _ssh_auth_sock(session: Session) -> str | None:
    """This session's ssh-agent (for keys that live there), sent with `up`."""
    import os

    sock = session.ssh_auth_sock
    if sock is None:
        sock = os.environ.get("SSH_AUTH_SOCK", "")
    return sock if sock.startswith("/") else None


async def up_async(session: Session, name: str, *, timeout: float = 30.0) -> UpResult:
    import asyncio  # here, not at the top: `status` imports this module and stays lean

    return await asyncio.to_thread(up, session, name, timeout=timeout)


def secrets_held(session: Session, name: str) -> SecretsHeld:
    """Which keys of NAME the running agent holds (AgentNotRunning if none runs)."""
    from tunnel_tui.agent.client import AgentClient

    return _held(AgentClient(session.home), name)


def _held(client: AgentClient, name: str) -> SecretsHeld:
    reply = client.secrets_held(name)
    keys = {str(k): bool(v) for k, v in dict(reply.get("keys") or {}).items()}
    return SecretsHeld(keys, bool(reply.get("vault_unlocked")))


def _caller_keys(
    session: Session, held: SecretsHeld
) -> tuple[dict[str, Secret] | None, str | None]:
    """(the private keys the agent lacks, read in this session, None) or, when this
    session has no store, (None, why): the agent then reads its own. Keys that live in
    an ssh-agent are not read here (the socket goes with the request)."""
    catalog = session.catalog()  # key records come from the config: no store opened
    wanted = [key_id for key_id in held.missing if not catalog.key(key_id).in_agent]
    if not wanted:
        return {}, None
    try:
        session.secret_store(ask=False)
    except SecretStoreError as exc:
        # Ask for the vault passphrase here only if a vault exists and the agent does
        # not hold it unlocked already (then the agent reads it: no prompt).
        from tunnel_tui.core import paths
        from tunnel_tui.core import vault as vault_file

        can_ask = session.ask_vault_passphrase is not None and not held.vault_unlocked
        if not (can_ask and vault_file.exists(paths.vault_path(session.home))):
            return None, exc.message  # e.g. "no usable keyring: no D-Bus session ..."
        session.secret_store(ask=True)  # a wrong passphrase fails here, exit 1
    try:
        return {key_id: catalog.private_key(key_id) for key_id in wanted}, None
    except SecretStoreError as exc:
        if held.vault_unlocked:  # stored in the vault the agent holds, not in this keyring
            return None, exc.message
        raise


def _connection(session: Session, name: str) -> Connection:
    from tunnel_tui.agent.snapshot import load_connections, unknown

    conn = load_connections(session.home).get(name)
    if conn is None:
        raise unknown(name)
    return conn


# -- down, status, events (no secret store ever) ------------------------------------------


def down(session: Session, name: str) -> TunnelStatus:
    """Take NAME down (a no-op if it is not up; no agent: its configured `down` row).
    The agent forgets the keys only this tunnel used."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning
    from tunnel_tui.agent.snapshot import configured_statuses

    try:
        return AgentClient(session.home).down(name)
    except AgentNotRunning:
        return configured_statuses(session.home, name)[0]


async def down_async(session: Session, name: str) -> TunnelStatus:
    from tunnel_tui.agent.client import AgentNotRunning, AsyncAgentClient
    from tunnel_tui.agent.snapshot import configured_statuses

    try:
        return await AsyncAgentClient(session.home).down(name)
    except AgentNotRunning:
        return configured_statuses(session.home, name)[0]


def status_snapshot(session: Session, name: str | None = None) -> StatusSnapshot:
    """The agent's view, or (no agent) every configured connection down."""
    from tunnel_tui.agent.snapshot import statuses_now

    return StatusSnapshot(*statuses_now(session.home, name))


async def status_snapshot_async(session: Session, name: str | None = None) -> StatusSnapshot:
    from tunnel_tui.agent.client import AgentNotRunning, AsyncAgentClient
    from tunnel_tui.agent.snapshot import configured_statuses

    try:
        return StatusSnapshot(await AsyncAgentClient(session.home).status(name), True)
    except AgentNotRunning:
        import asyncio

        return StatusSnapshot(
            await asyncio.to_thread(configured_statuses, session.home, name), False
        )


async def history_async(session: Session, name: str) -> TunnelHistory | None:
    """NAME's last 10 minutes in the agent (agent/history.py); None when it is not live
    or no agent runs."""
    from tunnel_tui.agent.client import AgentNotRunning, AsyncAgentClient
    from tunnel_tui.core.history import TunnelHistory

    try:
        data = await AsyncAgentClient(session.home).history(name)
    except AgentNotRunning:
        return None
    return TunnelHistory.from_json(data) if data is not None else None


def events(session: Session, *, interval: float = 1.0) -> Iterator[TunnelStatus]:
    """Every tunnel's status now, then each change, until the agent stops
    (AgentNotRunning when none runs)."""
    from tunnel_tui.agent.client import AgentClient

    return AgentClient(session.home).events(interval=interval)


async def events_async(session: Session, *, interval: float = 1.0) -> AsyncIterator[TunnelStatus]:
    from tunnel_tui.agent.client import AsyncAgentClient

    async for status in AsyncAgentClient(session.home).events(interval=interval):
        yield status


# -- the agent itself -------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRestarted:
    old_pid: int | None  # None: no agent was running
    new_pid: int
    taken_down: list[str]  # tunnels that were up in the old agent
    vault_locked: bool = False  # the old agent held the vault unlocked: unlock again


@dataclass(frozen=True)
class AgentStopped:
    pid: int | None
    vault_locked: bool  # it held the vault unlocked, which is now locked again


STOP_TIMEOUT = 20.0


def stop_agent(
    session: Session, *, before_stop: Callable[[list[str]], None] | None = None
) -> AgentStopped | None:
    """Ask the running agent (of any protocol version) to stop; None when none runs.
    `before_stop` is told first which tunnels go down. Returns at once: the agent
    closes its tunnels, then exits (forgetting the vault passphrase it held)."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    client = AgentClient(session.home)
    try:
        if before_stop is not None:
            before_stop(_live_tunnels(client))
        pid = client.call_any_version("ping").get("pid")
        held = _holds_vault(client)
        client.call_any_version("shutdown", timeout=30.0)
    except AgentNotRunning:
        return None
    return AgentStopped(int(pid) if isinstance(pid, int) else None, held)


def _holds_vault(client: AgentClient) -> bool:
    """Whether the agent holds the vault unlocked (an older agent: say nothing)."""
    from tunnel_tui.agent.client import AgentNotRunning
    from tunnel_tui.core.errors import TunnelTuiError

    try:
        return bool(client.vault_status().get("unlocked"))
    except AgentNotRunning:
        raise
    except TunnelTuiError:  # an older protocol, or no vault op: nothing to report
        return False


def restart_agent(
    session: Session, *, before_stop: Callable[[list[str]], None] | None = None
) -> AgentRestarted:
    """Stop the running agent (any version; `before_stop` is told which tunnels go down
    first), wait until it is gone, start this version's agent."""
    import time

    from tunnel_tui.agent.address import resolve
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning, ensure_agent
    from tunnel_tui.agent.daemon import lock_is_free
    from tunnel_tui.core.errors import TunnelTuiError

    client = AgentClient(session.home)
    old_pid: int | None = None
    vault_locked = False
    live: list[str] = []
    try:
        live = _live_tunnels(client)
        if before_stop is not None:
            before_stop(live)
        stopped = stop_agent(session)
        if stopped is not None:
            old_pid, vault_locked = stopped.pid, stopped.vault_locked
    except AgentNotRunning:
        pass
    if old_pid is not None:
        address = resolve(session.home)
        deadline = time.monotonic() + STOP_TIMEOUT
        while not lock_is_free(address):
            if time.monotonic() > deadline:
                raise TunnelTuiError(
                    f"the agent {old_pid} did not stop within {STOP_TIMEOUT:g} s",
                    hint=f"see {address.home / 'logs' / 'agent.log'}",
                )
            time.sleep(0.05)  # a blocking CLI wait, bounded by the deadline
    new_pid = ensure_agent(session.home).ping()["pid"]
    return AgentRestarted(old_pid, int(new_pid), live, vault_locked)


def _live_tunnels(client: AgentClient) -> list[str]:
    """The tunnels a stopping agent takes down (any protocol version answers status)."""
    from tunnel_tui.core.status import TunnelState

    reply = client.call_any_version("status")
    return [
        str(item.get("name"))
        for item in reply.get("tunnels", [])
        if item.get("state") not in (TunnelState.DOWN.value, TunnelState.FAILED.value)
    ]
