"""The one door from the screens to the rest of tunnel-tui.

Screens receive a `Services` object instead of importing the App or the core
modules; every call to the catalog, secret store, agent, validation and rotation
goes through here. Methods documented "blocking" touch the keyring, files or
processes and must run in a thread worker; `async` ones talk to the agent.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tunnel_tui.agent.snapshot import down_status
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Connection, Key, KeyType, SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelStatus
from tunnel_tui.core.steps import StepResult
from tunnel_tui.ui.form_result import FormResult, KeySource

if TYPE_CHECKING:
    from tunnel_tui.actions.rotate import StoppedRotation
    from tunnel_tui.actions.session import Session
    from tunnel_tui.actions.ssh_agent import AgentKeyInfo
    from tunnel_tui.agent.client import AsyncAgentClient
    from tunnel_tui.core.catalog import Catalog
    from tunnel_tui.core.config import Config


# (bastion "user@host:port", "SHA256:...") -> trust it? Asked during validation.
HostKeyQuestion = Callable[[str, str], Awaitable[bool]]


class NotAvailableError(TunnelTuiError):
    """A part of tunnel-tui this build does not include yet."""


@dataclass(frozen=True)
class SecretsState:
    backend: str  # "Secret Service", "vault", ...
    usable: bool  # False: the vault is locked or no store at all
    reason: str = ""

    @property
    def label(self) -> str:
        return self.backend if self.usable else f"{self.backend} (locked)"


@dataclass(frozen=True)
class SaveOutcome:
    connection: Connection
    key: Key
    generated: bool


@dataclass(frozen=True)
class ConnectionDetail:
    connection: Connection
    key: Key | None
    key_users: list[str] = field(default_factory=list)
    host_key_fingerprints: list[str] = field(default_factory=list)


class Services(Protocol):
    """What the screens may ask for. See `RealServices` for the real thing."""

    def connections(self) -> list[Connection]: ...  # blocking (config file)
    def detail(self, name: str) -> ConnectionDetail: ...  # blocking
    def keys(self) -> list[Key]: ...  # blocking
    def key_users(self) -> dict[str, list[str]]: ...  # blocking: key id -> connection names
    def save(self, form: FormResult) -> SaveOutcome: ...  # blocking (keyring)
    def remove(self, name: str) -> None: ...  # blocking (keyring)
    def generate_key(self, name: str, key_type: KeyType) -> Key: ...  # blocking
    def agent_keys(self) -> list[AgentKeyInfo]: ...  # blocking (the user's ssh-agent)
    def delete_key(self, key_id: str) -> None: ...  # blocking; refused while in use
    def authorized_keys_line(self, key: Key, *, restricted: bool) -> str: ...  # blocking
    def secrets_state(self) -> SecretsState: ...  # blocking (keyring probe)
    def unlock_vault(self, passphrase: Secret) -> None: ...  # blocking
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
    def rotation_available(self) -> bool: ...
    def rotate(self, name: str) -> AsyncIterator[StepResult]: ...  # starts, or resumes
    def stopped_rotation(self, name: str) -> StoppedRotation | None: ...  # blocking
    async def roll_back(self, name: str) -> str: ...  # what was undone


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class RealServices:
    """The real catalog, secret store, agent, validation and rotation, imported lazily
    so the app paints before asyncssh or the keyring libraries load."""

    def __init__(
        self, home: Path | None = None, *, vault_passphrase: Secret | None = None
    ) -> None:
        self.home = home
        self._vault_passphrase = vault_passphrase
        self._cached_config: tuple[tuple[int, int, int] | None, Config] | None = None
        self._catalog: Catalog | None = None

    def prefetch(self) -> None:
        """Start reading the config now, while the app draws its first frame."""
        import threading

        def read() -> None:
            try:
                self._config()
            except (TunnelTuiError, OSError):
                pass  # reported when the screen asks for it

        threading.Thread(target=read, name="config-prefetch", daemon=True).start()

    # -- catalog -----------------------------------------------------------------------
    def _cat(self) -> Catalog:
        if self._catalog is None:
            from tunnel_tui.core.catalog import Catalog

            self._catalog = Catalog(self.home, vault_passphrase=self._vault_passphrase)
        return self._catalog

    def _config(self) -> Config:
        """The config, parsed again only when the file changed (1,000 connections take
        tens of ms to parse; the list asks on every cursor move and timer tick)."""
        from tunnel_tui.core import config
        from tunnel_tui.core.paths import config_path

        try:
            st = config_path(self.home).stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        cached = self._cached_config
        if cached is None or cached[0] != stamp or stamp is None:
            cached = (stamp, config.load(self.home))
            self._cached_config = cached
        return cached[1]

    def connections(self) -> list[Connection]:
        return list(self._config().connections.values())

    def detail(self, name: str) -> ConnectionDetail:
        cfg = self._config()
        conn = cfg.connections[name]
        key = cfg.keys.get(conn.key_id)
        users = sorted(c.name for c in cfg.connections.values() if c.key_id == conn.key_id)
        return ConnectionDetail(conn, key, users, self._host_fingerprints(conn))

    def _host_fingerprints(self, conn: Connection) -> list[str]:
        try:
            from tunnel_tui.core import keys
            from tunnel_tui.core.known_hosts import KnownHosts
        except ImportError:
            return []
        from tunnel_tui.core.paths import known_hosts_path

        known = KnownHosts(known_hosts_path(self.home))
        lines = known.trusted_keys(conn.bastion.host, conn.bastion.port)
        return [keys.fingerprint(line) for line in lines]

    def keys(self) -> list[Key]:
        return list(self._config().keys.values())

    def key_users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for conn in self._config().connections.values():
            users.setdefault(conn.key_id, []).append(conn.name)
        return users

    def save(self, form: FormResult) -> SaveOutcome:
        from tunnel_tui.core.catalog import (
            AgentKeyChoice,
            GenerateKey,
            ImportKey,
            KeyChoice,
            ReuseKey,
        )
        from tunnel_tui.core.urls import format_db_url, format_ssh_url

        cat = self._cat()
        choice: KeyChoice
        if form.key_source is KeySource.GENERATE:
            choice = GenerateKey()
        elif form.key_source is KeySource.AGENT:
            choice = AgentKeyChoice(form.agent_public_line)
        elif form.key_source is KeySource.REUSE:
            choice = ReuseKey(form.reuse_key_id)
        else:
            if form.key_source is KeySource.FILE:
                data = Path(form.key_path).expanduser().read_bytes()
            else:
                data = (form.key_pem.reveal() if form.key_pem else "").encode()
            choice = ImportKey(data, form.passphrase)
        db_url, ssh_url = format_db_url(form.database), format_ssh_url(form.bastion)
        if form.original_name:
            current = cat.get(form.original_name)
            same_key = isinstance(choice, ReuseKey) and choice.key_id_or_name == current.key_id
            result = cat.edit(
                form.original_name,
                db_url=db_url,
                ssh_url=ssh_url,
                key=None if same_key else choice,
                db_password=form.password,
                rename=form.name if form.name != form.original_name else None,
            )
        else:
            result = cat.add(form.name, db_url, ssh_url, key=choice, db_password=form.password)
        return SaveOutcome(result.connection, result.key, result.generated)

    def remove(self, name: str) -> None:
        self._cat().remove(name)

    def generate_key(self, name: str, key_type: KeyType) -> Key:
        return self._cat().generate_key(name, key_type)

    def delete_key(self, key_id: str) -> None:
        self._cat().delete_key(key_id)

    def agent_keys(self) -> list[AgentKeyInfo]:
        from tunnel_tui.actions.ssh_agent import agent_keys

        return agent_keys(self._session())

    def authorized_keys_line(self, key: Key, *, restricted: bool) -> str:
        from tunnel_tui.core import keys

        comment = f"tunnel-tui:{key.name}"
        targets = self._cat().restrict_targets(key.id) if restricted else None
        return keys.authorized_keys_line(key.public_key, comment, restrict_targets=targets or None)

    # -- secrets -----------------------------------------------------------------------
    def secrets_state(self) -> SecretsState:
        from tunnel_tui.core import secrets

        status = secrets.keyring_status()
        if status.usable:
            return SecretsState(status.name, True, status.reason)
        if secrets.mode() == "keyring":
            return SecretsState(status.name or "keyring", False, status.reason)
        if self._vault_passphrase is None and self._vault_in_agent():
            # `up` works (the agent reads the keys): do not ask for the passphrase again.
            return SecretsState("vault unlocked in the agent", True, status.reason)
        return SecretsState("vault", self._vault_passphrase is not None, status.reason)

    def unlock_vault(self, passphrase: Secret) -> None:
        from tunnel_tui.actions import vault

        # Checks the passphrase here (or creates the vault), keeps it for this run, and
        # hands it to a running agent too.
        session = self._session()
        vault.unlock(session, passphrase, create=not vault.exists(session), in_agent=False)
        self._vault_passphrase = passphrase
        self._catalog = None

    def _vault_in_agent(self) -> bool:
        from tunnel_tui.actions import vault

        try:
            return vault.state(self._session()).unlocked_in_agent
        except (TunnelTuiError, OSError):
            return False  # an older or foreign agent: the app asks for the passphrase

    def _session(self) -> Session:
        from tunnel_tui.actions.session import Session

        return Session(self.home, vault_passphrase=self._vault_passphrase)

    # -- agent -------------------------------------------------------------------------
    def _async_client(self) -> AsyncAgentClient:
        from tunnel_tui.agent.client import AsyncAgentClient

        return AsyncAgentClient(self.home)

    async def agent_running(self) -> bool:
        if not _module_exists("tunnel_tui.agent.client"):
            return False
        try:
            await self._async_client().status()
        except (TunnelTuiError, OSError):
            return False
        return True

    async def statuses(self) -> list[TunnelStatus]:
        import asyncio

        from tunnel_tui.actions import tunnels

        configured = await asyncio.to_thread(self.connections)
        try:
            snapshot = await tunnels.status_snapshot_async(self._session())
            live = {s.name: s for s in snapshot.statuses}
        except (TunnelTuiError, OSError):
            live = {}
        return [live.get(c.name) or down_status(c) for c in configured]

    async def events(self) -> AsyncIterator[TunnelStatus]:
        from tunnel_tui.actions import tunnels

        async for status in tunnels.events_async(self._session()):
            yield status

    async def up(self, name: str) -> TunnelStatus:
        from tunnel_tui.actions import tunnels

        return (await tunnels.up_async(self._session(), name)).status

    async def down(self, name: str) -> None:
        from tunnel_tui.actions import tunnels

        await tunnels.down_async(self._session(), name)

    async def wait_for_key(self, name: str, seconds: float) -> TunnelStatus:
        from tunnel_tui.actions import waiting

        return await waiting.up_wait_for_key_async(self._session(), name, seconds=seconds)

    # -- validation and rotation -------------------------------------------------------
    async def validate(
        self,
        name: str,
        *,
        accept_new_host_key: bool = False,
        wait_for_key_seconds: float = 0,
        on_host_key: HostKeyQuestion | None = None,
    ) -> AsyncIterator[StepResult]:
        import asyncio

        from tunnel_tui import validate
        from tunnel_tui.core.known_hosts import KnownHosts
        from tunnel_tui.core.paths import known_hosts_path

        cat = await asyncio.to_thread(self._cat)
        conn = await asyncio.to_thread(cat.get, name)

        async def ask(hop: SshEndpoint, fingerprint: str) -> bool:
            return await on_host_key(hop.display, fingerprint) if on_host_key else False

        async for step in validate.run(
            conn,
            cat,
            accept_new_host_key=accept_new_host_key,
            wait_for_key_seconds=wait_for_key_seconds,
            on_host_key=ask if on_host_key else None,
            known_hosts=KnownHosts(known_hosts_path(self.home)),
        ):
            yield step


    def rotation_available(self) -> bool:
        return _module_exists("tunnel_tui.rotation")

    async def rotate(self, name: str) -> AsyncIterator[StepResult]:
        import asyncio

        from tunnel_tui.actions import rotate
        from tunnel_tui.actions.session import Session

        session = Session(self.home, vault_passphrase=self._vault_passphrase)
        cat = await asyncio.to_thread(self._cat)
        async for step in rotate.rotate(session, name, catalog=cat):
            yield step

    def stopped_rotation(self, name: str) -> StoppedRotation | None:
        from tunnel_tui.actions import rotate

        return rotate.stopped_rotation(self._session(), name, catalog=self._cat())

    async def roll_back(self, name: str) -> str:
        import asyncio

        from tunnel_tui.actions import rotate

        cat = await asyncio.to_thread(self._cat)
        return await rotate.roll_back(self._session(), name, catalog=cat)
