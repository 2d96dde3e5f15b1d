"""Where the private keys are, and so where rotation's SSH work runs (DESIGN.md, "Where
a secret comes from"): `LocalKeys` logs in from this process with keys read from the
caller's store (its keyring, or the vault unlocked in it); the actions layer gives an
implementation that asks the agent to do the same with the vault it holds (the agent
never hands a key out). The steps only ever name keys by id.

`remove`'s bastion cleanup (actions/bastion_cleanup.py) uses the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tunnel_tui.core.client_keys import private_of
from tunnel_tui.core.model import SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.engine import key_lines
from tunnel_tui.engine.key_lines import LineRemoval, PrivateKey
from tunnel_tui.engine.ssh import KnownHostsLike

__all__ = ["KeyHolder", "LineRemoval", "LocalKeys"]


class KeyHolder(Protocol):
    """SSH work along `hops` (each with its key id, the server last), run where the keys
    are. Errors are TunnelTuiErrors (ManualInstallRequired from `add_line`)."""

    async def login_works(self, hops: Sequence[SshEndpoint]) -> bool:
        """Does the last hop accept its key? (Other failures raise.)"""
        ...

    async def add_line(self, hops: Sequence[SshEndpoint], line: str, like: str | None) -> str:
        """Add `line` to the last hop's authorized_keys; the method used."""
        ...

    async def remove_lines(
        self, hops: Sequence[SshEndpoint], public_keys: Sequence[str]
    ) -> list[LineRemoval]:
        """One login; each key's line removed, in order."""
        ...

    def secret_for_agent(self, key_id: str) -> Secret | None:
        """The private key that goes along to the agent (switch-key, rotation-wait);
        None when the agent holds the store it is in (it reads the key itself)."""
        ...


class LocalKeys:
    """The keys are in this process's store: log in from here."""

    def __init__(
        self, private_key: PrivateKey, known_hosts: KnownHostsLike, *, timeout: float = 20.0
    ) -> None:
        self._private_key = private_key
        self._known_hosts = known_hosts
        self._timeout = timeout

    async def login_works(self, hops: Sequence[SshEndpoint]) -> bool:
        return await key_lines.login_works(
            hops, self._private_key, self._known_hosts, timeout=self._timeout
        )

    async def add_line(self, hops: Sequence[SshEndpoint], line: str, like: str | None) -> str:
        return await key_lines.add_line(
            hops, self._private_key, self._known_hosts, line, like=like, timeout=self._timeout
        )

    async def remove_lines(
        self, hops: Sequence[SshEndpoint], public_keys: Sequence[str]
    ) -> list[LineRemoval]:
        return await key_lines.remove_lines(
            hops, self._private_key, self._known_hosts, public_keys, timeout=self._timeout
        )

    def secret_for_agent(self, key_id: str) -> Secret | None:
        return private_of(self._private_key(key_id))
