"""Checking (or creating) the encrypted vault before the agent keeps its passphrase."""

from __future__ import annotations

from pathlib import Path

from tunnel_tui.core import paths
from tunnel_tui.core.secret import Secret


def check_or_create(home: Path | None, passphrase: Secret, create: bool) -> None:
    """SecretStoreError for a wrong passphrase (or no vault); creates one when asked
    and none exists yet."""
    from tunnel_tui.core import vault

    path = paths.vault_path(home)
    if create and not vault.exists(path):
        vault.create(path, passphrase)
        return
    vault.Vault.open(path, passphrase)
