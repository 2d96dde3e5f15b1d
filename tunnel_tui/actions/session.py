"""Who is asking: the caller's home and how it reaches secrets in its own session.

Every action takes a `Session`. The CLI builds one whose `ask_vault_passphrase` prompts
on a terminal; the TUI builds one that holds the passphrase its unlock modal asked for
(once per run). Where a secret comes from, in order (DESIGN.md, "Where a secret comes
from"): the caller's OS keyring; the vault unlocked in this process; the vault held by
the agent (`agent_vault`: then the work runs in the agent); else the vault asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tunnel_tui.core.secret import Secret

if TYPE_CHECKING:
    from tunnel_tui.core.catalog import Catalog, SecretStore


@dataclass
class Session:
    home: Path | None = None
    # The vault passphrase unlocked in this process (the TUI asks once per run).
    vault_passphrase: Secret | None = field(default=None, repr=False)
    # Asked when the vault is needed and locked: the CLI prompts on a TTY (None: no TTY).
    ask_vault_passphrase: Callable[[], Secret | None] | None = field(default=None, repr=False)
    # The caller's ssh-agent, for keys that live there: None means this process's
    # $SSH_AUTH_SOCK (read when needed, so a CLI and the TUI each use their own).
    ssh_auth_sock: str | None = None
    # With no keyring and no vault unlocked here, use the vault the agent holds unlocked
    # before asking (write-only: secrets go in, none comes out; work that needs a key
    # then runs in the agent). The CLI's and the app's sessions do.
    agent_vault: bool = False
    _store: SecretStore | None = field(default=None, init=False, repr=False)

    def catalog(self) -> Catalog:
        """The catalog, with a secret store opened on first use in this session."""
        from tunnel_tui.core.catalog import Catalog

        return Catalog(self.home, secrets=_LazyStore(self))

    def secret_store(self, *, ask: bool = True) -> SecretStore:
        """The caller's store: keyring, else the vault unlocked here, else (with
        `agent_vault`) the vault the agent holds, else the vault asked for when `ask` and
        this session can ask."""
        if self._store is None:
            from tunnel_tui.core import secrets
            from tunnel_tui.core.errors import SecretStoreError

            try:
                self._store = secrets.open_store(self.home, vault_passphrase=self.vault_passphrase)
            except SecretStoreError as exc:
                if "vault" not in exc.message:
                    raise
                held = self._vault_in_agent()
                if held is not None:
                    self._store = held
                    return held
                if not ask or self.ask_vault_passphrase is None:
                    raise
                passphrase = self.ask_vault_passphrase()
                if passphrase is None:
                    raise
                self._store = secrets.open_store(self.home, vault_passphrase=passphrase)
                self.vault_passphrase = passphrase
        return self._store

    def _vault_in_agent(self) -> SecretStore | None:
        if not self.agent_vault:
            return None
        from tunnel_tui.agent.client import AgentVaultStore

        return AgentVaultStore.find(self.home)

    def forget_store(self) -> None:
        """After an unlock or lock: the next use opens the store again."""
        self._store = None


class _LazyStore:
    """A SecretStore that opens the session's store only when a secret is touched, so
    actions that read only the config never wake the keyring."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def backend_name(self) -> str:
        return self._session.secret_store().backend_name

    @property
    def write_only(self) -> bool:
        """The vault the agent holds: entries can be written, never read back."""
        return bool(getattr(self._session.secret_store(), "write_only", False))

    def get(self, name: str) -> Secret | None:
        return self._session.secret_store().get(name)

    def exists(self, name: str) -> bool:
        from tunnel_tui.core.catalog import secret_exists

        return secret_exists(self._session.secret_store(), name)

    def set(self, name: str, value: Secret) -> None:
        self._session.secret_store().set(name, value)

    def delete(self, name: str) -> None:
        self._session.secret_store().delete(name)

    def copy(self, name: str, to: str) -> bool:
        """Only for a write-only store (the vault the agent holds): copied in there."""
        copied: bool = self._session.secret_store().copy(name, to)  # type: ignore[attr-defined]
        return copied
