"""SSH work on one server's authorized_keys, logging in along its hops with keys given
by id: does a login work, add a line, remove lines.

Rotation and `remove`'s bastion cleanup run this where the private keys are: in the
caller (its keyring, or the vault unlocked in it) or in the agent (the vault it holds,
which never hands a key out). `hops` carry an explicit key id each (the server last);
`private_key` turns a key id into its private key (a TunnelTuiError when it cannot).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncssh

from tunnel_tui.core.client_keys import ClientKey
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import SshEndpoint
from tunnel_tui.engine.authorized_keys import (
    ManualInstallRequired,
    add_authorized_key,
    remove_authorized_key,
)
from tunnel_tui.engine.errors import AuthRejected
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.ssh import KnownHostsLike, close_all, connect_hops

# key id -> what logs in with it: a private key, a certified one, or one in an ssh-agent
PrivateKey = Callable[[str], ClientKey]


@dataclass(frozen=True)
class LineRemoval:
    """What became of one key's line on the server."""

    changed: bool  # the line was there and is gone now
    error: str | None = None  # why it could not be removed (it may remain)
    hint: str | None = None
    manual: bool = False  # the account allows neither SFTP nor a shell: a person must

    def to_json(self) -> dict[str, object]:
        return {"changed": self.changed, "error": self.error, "hint": self.hint,
                "manual": self.manual}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LineRemoval:
        error, hint = data.get("error"), data.get("hint")
        return cls(bool(data.get("changed")), str(error) if error else None,
                   str(hint) if hint else None, bool(data.get("manual")))


async def _connect(
    hops: Sequence[SshEndpoint], private_key: PrivateKey, known_hosts: KnownHostsLike,
    timeout: float,
) -> list[asyncssh.SSHClientConnection]:
    keys: dict[str, ClientKey] = {}
    for hop in hops:
        if hop.key_id is None:
            raise ValueError(f"{hop.display}: the hop has no key id")
        if hop.key_id not in keys:
            keys[hop.key_id] = private_key(hop.key_id)
    settings = EngineSettings(connect_timeout=timeout)
    return await connect_hops(tuple(hops), keys, known_hosts, settings=settings)


async def login_works(
    hops: Sequence[SshEndpoint], private_key: PrivateKey, known_hosts: KnownHostsLike,
    *, timeout: float = 20.0,
) -> bool:
    """Does the last hop accept its key? False only when that server rejects it; any
    other failure (unreachable, a jump host rejecting its key) raises."""
    try:
        conns = await _connect(hops, private_key, known_hosts, timeout)
    except AuthRejected as exc:
        if exc.hop_index == len(hops) - 1:
            return False
        raise
    await close_all(conns)
    return True


async def add_line(
    hops: Sequence[SshEndpoint], private_key: PrivateKey, known_hosts: KnownHostsLike,
    line: str, *, like: str | None = None, timeout: float = 20.0,
) -> str:
    """Add `line` to the last hop's authorized_keys (with the options of the line of
    public key `like`); the method used (sftp, exec). ManualInstallRequired where the
    account allows neither."""
    conns = await _connect(hops, private_key, known_hosts, timeout)
    try:
        result = await add_authorized_key(conns[-1], line, like=like, timeout=timeout)
    finally:
        await close_all(conns)
    return result.method.value


async def remove_lines(
    hops: Sequence[SshEndpoint], private_key: PrivateKey, known_hosts: KnownHostsLike,
    public_keys: Sequence[str], *, timeout: float = 20.0,
) -> list[LineRemoval]:
    """One login, then each public key's line removed in order (every other line kept);
    one LineRemoval per key. A failed login raises; a failed edit is reported."""
    conns = await _connect(hops, private_key, known_hosts, timeout)
    outcomes: list[LineRemoval] = []
    try:
        for public in public_keys:
            try:
                result = await remove_authorized_key(conns[-1], public, timeout=timeout)
            except ManualInstallRequired as exc:
                outcomes.append(LineRemoval(False, exc.message, exc.hint, manual=True))
            except TunnelTuiError as exc:
                outcomes.append(LineRemoval(False, exc.message, exc.hint))
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                outcomes.append(LineRemoval(False, str(exc) or type(exc).__name__))
            else:
                outcomes.append(LineRemoval(result.changed))
    finally:
        await close_all(conns)
    return outcomes
