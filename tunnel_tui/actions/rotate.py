"""Key rotation, the one action the CLI (`rotate-key`) and the TUI (rotation screen) call:
start or resume, roll back, and what an unfinished rotation looks like.

The steps live in `tunnel_tui.rotation`; this module gives them the caller's catalog
(secrets resolved in the caller's session), the caller's known_hosts, the callback
that moves live tunnels (the agent's switch-key request, carrying the new private key)
and where the keys are: this process, or — when the caller's only store is the vault
the agent holds — the agent, which then runs the SSH steps (actions/agent_keys.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tunnel_tui import rotation
from tunnel_tui.core.errors import NotFoundError, UsageError
from tunnel_tui.core.rotation_record import STAGE_AFTER
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation import CatalogLike, KeyHolder, SwitchKey
from tunnel_tui.rotation.context import HandOff

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.engine.ssh import KnownHostsLike


@dataclass(frozen=True)
class StoppedRotation:
    """An unfinished rotation of a connection's key: resume it, or roll it back."""

    connection: str  # the connection it was asked for
    old_key: str  # key names (the old one may be gone after cleanup's delete)
    new_key: str
    last_step: str  # the last step that completed: generate, store, install, ...
    next_step: str  # the step resume runs first (after check)
    started: datetime  # UTC
    updated: datetime  # UTC
    connections: tuple[str, ...]  # every connection the rotation touches
    can_roll_back: bool  # only before the switch; after it, resume finishes it

    @property
    def summary(self) -> str:
        """'stopped after install (next: verify)': one line for a list or a dialog."""
        return f"stopped after {self.last_step} (next: {self.next_step})"


def agent_hand_off(session: Session) -> HandOff:
    """rotate-key --background: the agent waits for the new key (it gets the new private
    key, and the keys of other hops, read here); the rotation stops at `install`."""

    async def hand_off(
        name: str, old_key_id: str, new_key_id: str, new_private: Secret | None,
        seconds: float,
    ) -> datetime:
        import asyncio

        from tunnel_tui.agent.client import ensure_agent

        if new_private is None:  # refused by rotate() before it starts
            raise UsageError("rotate-key --background cannot use the vault the agent holds")

        def send() -> str:
            catalog = session.catalog()
            conn = catalog.get(name)
            keys = {new_key_id: new_private}
            for key_id in dict.fromkeys([conn.key_id] + [h.key_id for h in conn.jumps]):
                if key_id and key_id != old_key_id and not catalog.key(key_id).in_agent:
                    keys[key_id] = catalog.private_key(key_id)
            client = ensure_agent(session.home)
            return client.rotation_wait(name, old_key_id, new_key_id, keys, seconds)

        until = await asyncio.to_thread(send)
        return datetime.fromisoformat(until.replace("Z", "+00:00"))

    return hand_off


def agent_switch(home: Path | None) -> SwitchKey:
    """The SwitchKey callback that asks this home's agent to move its live tunnels to
    the new key, sending the key with the request. None back: no agent is running."""

    async def switch(
        old_key_id: str, new_key_id: str, new_private_key: Secret | None
    ) -> list[str] | None:
        from tunnel_tui.agent.client import AgentNotRunning, AsyncAgentClient

        try:
            client = AsyncAgentClient(home)
            return await client.switch_key(old_key_id, new_key_id, new_private_key)
        except AgentNotRunning:
            return None

    return switch


def _catalog(session: Session, catalog: CatalogLike | None) -> CatalogLike:
    return catalog if catalog is not None else session.catalog()


def key_holder(session: Session, catalog: CatalogLike) -> KeyHolder | None:
    """The agent's KeyHolder when the catalog's store is the vault the agent holds;
    None: rotation's default, the keys read in this process."""
    from tunnel_tui.actions.agent_keys import agent_keys

    home = getattr(catalog, "home", None)
    return agent_keys(catalog, Path(home) if home is not None else session.home)


def _known_hosts(session: Session, known_hosts: KnownHostsLike | None) -> KnownHostsLike:
    if known_hosts is not None:
        return known_hosts
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.paths import known_hosts_path

    return KnownHosts(known_hosts_path(session.home))


async def rotate(
    session: Session,
    name: str,
    *,
    manual: bool = False,
    key_type: str | None = None,
    wait_seconds: float = 3600,
    poll_interval: float = 5.0,
    known_hosts: KnownHostsLike | None = None,
    switch: SwitchKey | None = None,
    catalog: CatalogLike | None = None,
    background: bool = False,
) -> AsyncIterator[StepResult]:
    """Rotate the key of connection `name` (and of every connection sharing it), or
    resume its stopped rotation: one StepResult per step (rotation.rotate).

    `switch`: default `agent_switch(session.home)`; `catalog`: default
    `session.catalog()` (the CLI passes its own, which also reaches a vault the agent
    holds). Bad input (unknown name, bad key type, a key that cannot be rotated) raises
    UsageError/NotFoundError before anything is written. `background`: a manual install
    is waited for by the agent (`agent_hand_off`); the rows end there, to be resumed.
    """
    cat = _catalog(session, catalog)
    # An unknown name or a key that cannot be rotated is refused before any store opens.
    rotation.ensure_rotatable(cat.key(cat.get(name).key_id))
    keys = key_holder(session, cat)
    if background and keys is not None:
        raise UsageError(
            "rotate-key --background needs the keys in this terminal (its keyring, or the "
            "vault unlocked here); here only the agent holds the vault",
            hint=f"run it in the foreground: tunnel-tui rotate-key {name} (the agent does "
            "the SSH steps with the vault it holds)",
        )
    rows = rotation.rotate(
        cat,
        name,
        switch=switch or agent_switch(session.home),
        manual=manual,
        key_type=key_type,
        wait_seconds=wait_seconds,
        poll_interval=poll_interval,
        known_hosts=_known_hosts(session, known_hosts),
        home=session.home,
        hand_off=agent_hand_off(session) if background else None,
        keys=keys,
    )
    async for row in rows:
        yield row


def stopped_rotation(
    session: Session, name: str, *, catalog: CatalogLike | None = None
) -> StoppedRotation | None:
    """The stopped (unfinished) rotation of `name`'s key, or None."""
    cat = _catalog(session, catalog)
    record = rotation.stopped_rotation(cat, name, home=session.home)
    if record is None or record.next_step is None:
        return None

    def key_name(key_id: str) -> str:
        try:
            return cat.key(key_id).name if key_id else ""
        except NotFoundError:
            return key_id

    return StoppedRotation(
        connection=name,
        old_key=key_name(record.old_key_id),
        new_key=record.new_key_name,
        last_step=_STEP_OF_STAGE[record.stage.value],
        next_step=record.next_step,
        started=record.started,
        updated=record.updated,
        connections=record.connections,
        can_roll_back=record.can_roll_back,
    )


# The step that completes each recorded stage.
_STEP_OF_STAGE = {stage.value: step for step, stage in STAGE_AFTER.items()}


async def resume(
    session: Session,
    name: str,
    *,
    wait_seconds: float = 3600,
    poll_interval: float = 5.0,
    known_hosts: KnownHostsLike | None = None,
    switch: SwitchKey | None = None,
    catalog: CatalogLike | None = None,
) -> AsyncIterator[StepResult]:
    """Resume the stopped rotation of `name`'s key; UsageError if there is none."""
    if stopped_rotation(session, name, catalog=catalog) is None:
        raise UsageError(
            f"no unfinished rotation for {name}", hint=f"tunnel-tui rotate-key {name} starts one"
        )
    rows = rotate(
        session,
        name,
        wait_seconds=wait_seconds,
        poll_interval=poll_interval,
        known_hosts=known_hosts,
        switch=switch,
        catalog=catalog,
    )
    async for row in rows:
        yield row


async def roll_back(
    session: Session,
    name: str,
    *,
    known_hosts: KnownHostsLike | None = None,
    catalog: CatalogLike | None = None,
) -> str:
    """Undo the stopped rotation of `name`'s key (only before its switch step): the new
    line off the bastions, the new key deleted, the record dropped. What was done."""
    cat = _catalog(session, catalog)
    return await rotation.roll_back(
        cat,
        name,
        known_hosts=_known_hosts(session, known_hosts),
        home=session.home,
        keys=key_holder(session, cat),
    )
