"""The encrypted vault (where no keyring works): unlock (creating it the first time),
lock, and its state — for `tunnel-tui vault ...` and the app's unlock dialog alike.

Two places can hold it unlocked: the caller's own process (`Session.vault_passphrase`;
the app asks once per run) and the agent (`vault unlock` from the CLI, whose process
ends at once; the agent forgets it after an idle timeout). Whoever asks for a new
vault's passphrase asks twice: `exists()` tells it whether unlocking creates one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.secret import Secret

__all__ = ["VaultState", "exists", "lock", "state", "unlock"]


@dataclass(frozen=True)
class VaultState:
    exists: bool
    unlocked_in_agent: bool
    unlocked_here: bool  # in the caller's session
    idle_timeout: float | None  # seconds the agent keeps it; None: no agent runs
    created: bool = False  # this unlock created the vault

    def to_json(self) -> dict[str, Any]:
        """`vault status --json`: {exists, unlocked (in the agent), idle_timeout}."""
        return {
            "exists": self.exists,
            "unlocked": self.unlocked_in_agent,
            "idle_timeout": self.idle_timeout,
        }


def exists(session: Session) -> bool:
    """Whether a vault exists (else unlocking creates one: ask the passphrase twice)."""
    from tunnel_tui.core import paths
    from tunnel_tui.core import vault as vault_file

    return vault_file.exists(paths.vault_path(session.home))


def unlock(
    session: Session, passphrase: Secret, *, create: bool = False, in_agent: bool = True
) -> VaultState:
    """Unlock the vault, or create it when `create` and none exists yet (SecretStoreError,
    exit 1, for a wrong passphrase; UsageError, exit 2, with no vault and no `create`).

    `in_agent` (the CLI, whose process ends at once): the agent, started if needed,
    checks it and keeps the passphrase. Otherwise (the app) it is checked here and kept
    in `session`, and handed to the agent too when one runs, so the CLI in an SSH login
    can use it meanwhile.
    """
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning, ensure_agent
    from tunnel_tui.agent.vaultkeeper import check_or_create
    from tunnel_tui.core.errors import UsageError

    new = not exists(session)
    if new and not create:
        raise UsageError(
            "there is no vault yet", hint="create it: tunnel-tui vault unlock (asks twice)"
        )
    if in_agent:
        held = ensure_agent(session.home).vault_unlock(passphrase, create=new)
        return _state(session, held, created=new)
    check_or_create(session.home, passphrase, new)
    session.vault_passphrase = passphrase
    session.forget_store()
    reply: dict[str, Any] | None
    try:
        reply = AgentClient(session.home).vault_unlock(passphrase)
    except AgentNotRunning:
        reply = None  # `up` sends the keys it reads here; no agent needs the passphrase
    return _state(session, reply, created=new)


def lock(session: Session) -> VaultState:
    """Forget the passphrase here and in the agent (if one runs)."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    session.vault_passphrase = None
    session.forget_store()
    try:
        reply: dict[str, Any] | None = AgentClient(session.home).vault_lock()
    except AgentNotRunning:
        reply = None
    return _state(session, reply)


def state(session: Session) -> VaultState:
    """Whether a vault exists and who holds it unlocked (no keyring is touched)."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    try:
        reply: dict[str, Any] | None = AgentClient(session.home).vault_status()
    except AgentNotRunning:
        reply = None
    return _state(session, reply)


def _state(session: Session, reply: dict[str, Any] | None, *, created: bool = False) -> VaultState:
    if reply is None:  # no agent, so no timer
        return VaultState(exists(session), False, session.vault_passphrase is not None, None)
    timeout = reply.get("idle_timeout")
    return VaultState(
        exists=bool(reply.get("exists")),
        unlocked_in_agent=bool(reply.get("unlocked")),
        unlocked_here=session.vault_passphrase is not None,
        idle_timeout=float(timeout) if timeout is not None else None,
        created=created,
    )
