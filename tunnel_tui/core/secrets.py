"""Where secrets live: the OS keyring when a safe one works, else the encrypted vault.

`open_store()` is the one entry point (CLI, TUI, agent). `TUNNEL_TUI_SECRETS`
overrides the choice: `auto` (default), `keyring` (fail rather than use the vault),
`vault` (never touch the keyring: the demo sandbox uses it).

Entry names (DESIGN.md): `key:<key id>`, `db-password:<connection>`; service
`tunnel-tui`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from tunnel_tui.core import paths
from tunnel_tui.core import vault as vault_mod
from tunnel_tui.core.errors import SecretStoreError, UsageError
from tunnel_tui.core.keyring_backend import (
    DEFAULT_TIMEOUT,
    SERVICE,
    KeyringStatus,
    KeyringStore,
    select,
)
from tunnel_tui.core.secret import Secret

__all__ = [
    "ENV",
    "SERVICE",
    "KeyringStatus",
    "KeyringStore",
    "SecretStore",
    "keyring_status",
    "mode",
    "open_store",
]

ENV = "TUNNEL_TUI_SECRETS"
MODES = ("auto", "keyring", "vault")


@runtime_checkable
class SecretStore(Protocol):
    """A place for secrets. Values are always `Secret`; names are not secret."""

    @property
    def backend_name(self) -> str: ...

    def get(self, name: str) -> Secret | None: ...

    def set(self, name: str, value: Secret) -> None: ...

    def delete(self, name: str) -> None: ...


def mode() -> str:
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise UsageError(
            f"{ENV}={value!r} is not one of auto, keyring, vault",
            hint=f"unset {ENV} or set it to auto",
        )
    return value


def keyring_status(timeout: float = DEFAULT_TIMEOUT) -> KeyringStatus:
    """(usable, backend name, one-line reason) for the TUI header and CLI messages.

    Runs the full choice with its canary probe (a few tens of ms on Secret Service);
    call it once, not per frame.
    """
    if mode() == "vault":
        return KeyringStatus(False, "", f"{ENV}=vault: the keyring is not used")
    _, status = select(timeout)
    return status


def open_store(
    home: Path | None = None,
    *,
    vault_passphrase: Secret | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    create_vault: bool = True,
) -> KeyringStore | vault_mod.Vault:
    """The store to use, or SecretStoreError explaining why none is usable.

    With no usable keyring and a `vault_passphrase`, the vault at `paths.vault_path(home)`
    is unlocked; if none exists yet it is created (when `create_vault`; the CLI asks
    for a new passphrase twice before passing it here).
    """
    chosen = mode()
    if chosen != "vault":
        store, status = select(timeout)
        if store is not None:
            return store
        if chosen == "keyring":
            raise SecretStoreError(
                f"no usable keyring: {status.reason}",
                hint=f"{ENV}=keyring forbids the vault fallback; unset it to allow the vault",
            )
        reason = f"no usable keyring: {status.reason}"
    else:
        reason = f"{ENV}=vault"
    return _open_vault(home, vault_passphrase, reason, create_vault)


def _open_vault(
    home: Path | None, passphrase: Secret | None, reason: str, create: bool
) -> vault_mod.Vault:
    path = paths.vault_path(home)
    present = vault_mod.exists(path)
    if passphrase is None:
        if present:
            hint = "unlock the encrypted vault: tunnel-tui vault unlock"
        else:
            hint = "create the encrypted vault: tunnel-tui vault unlock (asks for a new passphrase)"
        raise SecretStoreError(f"{reason}, and the vault is locked", hint=hint)
    if present:
        return vault_mod.Vault.open(path, passphrase)
    if not create:
        raise SecretStoreError(
            f"{reason}; no vault at {path}",
            hint="create it: tunnel-tui vault unlock (asks for a new passphrase)",
        )
    return vault_mod.create(path, passphrase)
