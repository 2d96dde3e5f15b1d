"""The one door from the screens to the rest of tunnel-tui.

Screens receive a `Services` object instead of importing the App or the core modules.
`RealServices` holds no behaviour of its own: every call goes to `tunnel_tui.actions`
(the same functions the CLI calls), in this app's `Session`. Methods documented
"blocking" touch the keyring, files or processes and must run in a thread worker;
`async` ones talk to the agent.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tunnel_tui.actions.connections import (
    ConnectionDetail,
    ConnectionInput,
    RemovalPlan,
    RemoveOutcome,
    SaveResult,
)
from tunnel_tui.actions.session import Session
from tunnel_tui.actions.validate import HostKeyQuestion
from tunnel_tui.agent.snapshot import down_status
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Connection, Key, KeyType
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelStatus
from tunnel_tui.core.steps import StepResult

if TYPE_CHECKING:
    from tunnel_tui.actions.rotate import StoppedRotation
    from tunnel_tui.actions.ssh_agent import AgentKeyInfo
    from tunnel_tui.core.config import Config, ConfigCache
    from tunnel_tui.core.history import TunnelHistory

__all__ = [
    "ConnectionDetail",
    "HostKeyQuestion",
    "RealServices",
    "SaveResult",
    "SecretsState",
    "Services",
    "down_status",
]


@dataclass(frozen=True)
class SecretsState:
    backend: str  # "Secret Service", "vault", ...
    usable: bool  # False: the vault is locked or no store at all
    reason: str = ""

    @property
    def label(self) -> str:
        return self.backend if self.usable else f"{self.backend} (locked)"


class Services(Protocol):
    """What the screens may ask for. See `RealServices` for the real thing."""

    def connections(self) -> list[Connection]: ...  # blocking (config file)
    def detail(self, name: str) -> ConnectionDetail: ...  # blocking
    def keys(self) -> list[Key]: ...  # blocking
    def key_users(self) -> dict[str, list[str]]: ...  # blocking: key id -> connection names
    def save(  # blocking (keyring); `original_name` when editing
        self, form: ConnectionInput, *, original_name: str | None = None
    ) -> SaveResult: ...
    def removal_plan(self, name: str) -> RemovalPlan: ...  # blocking (config file)
    def remove(  # blocking (agent, keyring, SSH to the bastion when asked)
        self, name: str, *, clean_bastion: bool = False
    ) -> RemoveOutcome: ...
    def generate_key(self, name: str, key_type: KeyType) -> Key: ...  # blocking
    def agent_keys(self) -> list[AgentKeyInfo]: ...  # blocking (the user's ssh-agent)
    def delete_key(self, key_id: str) -> None: ...  # blocking; refused while in use
    def authorized_keys_line(self, key: Key, *, restricted: bool) -> str: ...  # blocking
    def secrets_state(self) -> SecretsState: ...  # blocking (keyring probe)
    def unlock_vault(self, passphrase: Secret) -> None: ...  # blocking
    def vault_exists(self) -> bool: ...  # blocking (else unlocking creates one)
    async def agent_running(self) -> bool: ...
    async def statuses(self) -> list[TunnelStatus]: ...
    def events(self) -> AsyncIterator[TunnelStatus]: ...
    async def up(self, name: str) -> TunnelStatus: ...
    async def down(self, name: str) -> None: ...
    # The agent waits for the key (up --wait-for-key): `waiting-for-key`, or `up`.
    async def wait_for_key(self, name: str, seconds: float) -> TunnelStatus: ...
    def validate(
        self,
        name: str,
        *,
        accept_new_host_key: bool = False,
        wait_for_key_seconds: float = 0,
        on_host_key: HostKeyQuestion | None = None,
    ) -> AsyncIterator[StepResult]: ...
    def rotate(self, name: str) -> AsyncIterator[StepResult]: ...  # starts, or resumes
    def stopped_rotation(self, name: str) -> StoppedRotation | None: ...  # blocking
    async def roll_back(self, name: str) -> str: ...  # what was undone
    async def history(self, name: str) -> TunnelHistory | None: ...  # the last 10 minutes
    def open_client(self, name: str) -> int: ...  # blocking: runs in the terminal
    def bastion_setup(self, key: Key) -> str: ...  # blocking (config file)


class RealServices:
    """The actions in this app's session. Heavy modules are imported when first used,
    so the app paints before asyncssh or the keyring libraries load."""

    def __init__(
        self, home: Path | None = None, *, vault_passphrase: Secret | None = None
    ) -> None:
        self.home = home
        self.session = Session(home, vault_passphrase=vault_passphrase, agent_vault=True)
        self._cache: ConfigCache | None = None
        # One parse at a time: the first screen's ask waits for the prefetch's parse
        # and reuses it (both started one before either had cached it).
        self._config_lock = threading.Lock()

    def prefetch(self) -> None:
        """Start reading the config now, while the app draws its first frame."""

        def read() -> None:
            try:
                self._config()
            except (TunnelTuiError, OSError):
                pass  # reported when the screen asks for it

        threading.Thread(target=read, name="config-prefetch", daemon=True).start()

    def _config(self) -> Config:
        with self._config_lock:
            if self._cache is None:
                from tunnel_tui.core.config import ConfigCache

                self._cache = ConfigCache(self.home)
            return self._cache.get()

    # -- connections and keys ------------------------------------------------------------
    def connections(self) -> list[Connection]:
        from tunnel_tui.actions import connections

        return connections.list_connections(self.session, self._config()).connections

    def detail(self, name: str) -> ConnectionDetail:
        from tunnel_tui.actions import connections

        return connections.show(self.session, name, self._config())

    def keys(self) -> list[Key]:
        from tunnel_tui.actions import keys

        return [info.key for info in keys.list_keys(self.session)]

    def key_users(self) -> dict[str, list[str]]:
        from tunnel_tui.actions import keys

        return keys.key_users(self.session)

    def save(self, form: ConnectionInput, *, original_name: str | None = None) -> SaveResult:
        from tunnel_tui.actions import connections

        return connections.save(self.session, form, original_name=original_name)

    def removal_plan(self, name: str) -> RemovalPlan:
        from tunnel_tui.actions import connections

        return connections.plan_remove(self.session, name)

    def remove(self, name: str, *, clean_bastion: bool = False) -> RemoveOutcome:
        from tunnel_tui.actions import connections

        return connections.remove(self.session, name, clean_bastion=clean_bastion)

    def generate_key(self, name: str, key_type: KeyType) -> Key:
        from tunnel_tui.actions import keys

        return keys.generate(self.session, name, key_type)

    def delete_key(self, key_id: str) -> None:
        from tunnel_tui.actions import keys

        keys.delete(self.session, key_id)

    def agent_keys(self) -> list[AgentKeyInfo]:
        from tunnel_tui.actions.ssh_agent import agent_keys

        return agent_keys(self.session)

    def authorized_keys_line(self, key: Key, *, restricted: bool) -> str:
        from tunnel_tui.actions import keys

        return keys.authorized_line(self.session, key, restricted=restricted)

    # -- secrets -----------------------------------------------------------------------
    def secrets_state(self) -> SecretsState:
        from tunnel_tui.core import secrets

        status = secrets.keyring_status()
        if status.usable:
            return SecretsState(status.name, True, status.reason)
        if secrets.mode() == "keyring":
            return SecretsState(status.name or "keyring", False, status.reason)
        passphrase = self.session.vault_passphrase
        if passphrase is None and self._vault_in_agent():
            # `up` works (the agent reads the keys): do not ask for the passphrase again.
            return SecretsState("vault unlocked in the agent", True, status.reason)
        return SecretsState("vault", passphrase is not None, status.reason)

    def unlock_vault(self, passphrase: Secret) -> None:
        from tunnel_tui.actions import vault

        # Checks the passphrase here (or creates the vault), keeps it for this run, and
        # hands it to a running agent too.
        session = self.session
        vault.unlock(session, passphrase, create=not vault.exists(session), in_agent=False)
        session.vault_passphrase = passphrase
        session.forget_store()

    def vault_exists(self) -> bool:
        from tunnel_tui.actions import vault

        return vault.exists(self.session)

    def _vault_in_agent(self) -> bool:
        from tunnel_tui.actions import vault

        try:
            return vault.state(self.session).unlocked_in_agent
        except (TunnelTuiError, OSError):
            return False  # an older or foreign agent: the app asks for the passphrase

    # -- agent -------------------------------------------------------------------------
    async def agent_running(self) -> bool:
        from tunnel_tui.agent.client import AsyncAgentClient

        try:
            await AsyncAgentClient(self.home).status()
        except (TunnelTuiError, OSError):
            return False
        return True

    async def statuses(self) -> list[TunnelStatus]:
        import asyncio

        from tunnel_tui.actions import tunnels

        configured = await asyncio.to_thread(self.connections)
        try:
            snapshot = await tunnels.status_snapshot_async(self.session)
            live = {s.name: s for s in snapshot.statuses}
        except (TunnelTuiError, OSError):
            live = {}
        return [live.get(c.name) or down_status(c) for c in configured]

    async def events(self) -> AsyncIterator[TunnelStatus]:
        from tunnel_tui.actions import tunnels

        async for status in tunnels.events_async(self.session):
            yield status

    async def up(self, name: str) -> TunnelStatus:
        from tunnel_tui.actions import tunnels

        return (await tunnels.up_async(self.session, name)).status

    async def down(self, name: str) -> None:
        from tunnel_tui.actions import tunnels

        await tunnels.down_async(self.session, name)

    async def wait_for_key(self, name: str, seconds: float) -> TunnelStatus:
        from tunnel_tui.actions import waiting

        return await waiting.up_wait_for_key_async(self.session, name, seconds=seconds)

    # -- validation and rotation -------------------------------------------------------
    async def validate(
        self,
        name: str,
        *,
        accept_new_host_key: bool = False,
        wait_for_key_seconds: float = 0,
        on_host_key: HostKeyQuestion | None = None,
    ) -> AsyncIterator[StepResult]:
        from tunnel_tui.actions import validate

        async for step in validate.validate(
            self.session,
            name,
            accept_new_host_key=accept_new_host_key,
            wait_for_key_seconds=wait_for_key_seconds,
            on_host_key=on_host_key,
        ):
            yield step

    async def rotate(self, name: str) -> AsyncIterator[StepResult]:
        from tunnel_tui.actions import rotate

        async for step in rotate.rotate(self.session, name):
            yield step

    def stopped_rotation(self, name: str) -> StoppedRotation | None:
        from tunnel_tui.actions import rotate

        return rotate.stopped_rotation(self.session, name)

    async def roll_back(self, name: str) -> str:
        from tunnel_tui.actions import rotate

        return await rotate.roll_back(self.session, name)

    # -- exec, bastion setup, history ---------------------------------------------------
    async def history(self, name: str) -> TunnelHistory | None:
        from tunnel_tui.actions import tunnels

        return await tunnels.history_async(self.session, name)

    def open_client(self, name: str) -> int:
        """The database's own client for NAME in this terminal (`tunnel-tui exec NAME`);
        call with the app suspended. Its exit status."""
        from tunnel_tui.actions import exec as exec_action

        return exec_action.run(self.session, name, [])

    def bastion_setup(self, key: Key) -> str:
        from tunnel_tui.actions.bastion_setup import script_for_key

        return script_for_key(self.session.catalog(), key)
