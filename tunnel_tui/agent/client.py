"""Talking to the agent: `AgentClient` (blocking, for the CLI) and `AsyncAgentClient`
(for the TUI), plus `ensure_agent` which starts the agent on demand.

This module is on the `tunnel-tui status` path: it imports only the standard
library and `tunnel_tui.core` (no asyncssh, no textual, no keyring), so status
answers in a few milliseconds from any terminal, including an SSH login.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunnel_tui.agent import protocol
from tunnel_tui.agent.address import (
    AgentAddress,
    AgentSocketForeign,
    check_owned,
    check_socket_dir,
    resolve,
)
from tunnel_tui.agent.peercred import require_own_peer
from tunnel_tui.core.errors import SecretStoreError, TunnelTuiError
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelStatus

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "AgentClient",
    "AgentNotRunning",
    "AgentVaultStore",
    "AgentSocketForeign",
    "AgentVersionMismatch",
    "AsyncAgentClient",
    "ensure_agent",
    "start_agent",
]

AgentVersionMismatch = protocol.AgentVersionMismatch

CONNECT_TIMEOUT = 5.0
START_TIMEOUT = 15.0
_ids = count(1)


class AgentNotRunning(TunnelTuiError):
    """No agent answers on this home's socket."""

    def __init__(self, address: AgentAddress) -> None:
        super().__init__(
            "no tunnels are up (the agent is not running)",
            hint="`tunnel-tui up NAME` starts it",
        )
        self.address = address


def _connect_error(address: AgentAddress, exc: OSError) -> TunnelTuiError:
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return AgentNotRunning(address)
    if isinstance(exc, PermissionError):
        check_owned(address.socket)  # raises AgentSocketForeign when that is the cause
        check_owned(address.socket.parent)
        return AgentSocketForeign(
            f"cannot open the agent socket {address.socket}: permission denied",
            hint="the socket or its directory belongs to another user",
        )
    return TunnelTuiError(f"cannot reach the agent at {address.socket}: {exc}")


def _up_args(
    name: str,
    timeout: float,
    keys: Mapping[str, Secret] | None,
    no_keys: str | None,
    ssh_auth_sock: str | None,
    wait_for_key: float | None = None,
    db_password: Secret | None = None,
) -> dict[str, Any]:
    """The `up` request: the keys the caller resolved (or null and why it has none),
    and its ssh-agent socket for keys that live there. `wait_for_key` (seconds): the
    agent keeps trying until then; the database password goes along for its checks."""
    secrets: dict[str, Any] = {
        "keys": None if keys is None else {k: value.reveal() for k, value in keys.items()},
        "no_keys": no_keys if keys is None else None,
        "ssh_auth_sock": ssh_auth_sock,
    }
    args: dict[str, Any] = {"name": name, "wait": timeout, "secrets": secrets}
    if wait_for_key is not None:
        args["wait_for_key"] = wait_for_key
        secrets["db_password"] = db_password.reveal() if db_password is not None else None
    return args


def _switch_args(
    old_key_id: str, new_key_id: str, new_private_key: Secret | None
) -> dict[str, Any]:
    return {
        "old_key_id": old_key_id,
        "new_key_id": new_key_id,
        "new_private_key": None if new_private_key is None else new_private_key.reveal(),
    }


def _reply(line: bytes, address: AgentAddress) -> dict[str, Any]:
    if not line:
        raise TunnelTuiError(
            "the agent closed the connection without answering",
            hint=f"see {address.home / 'logs' / 'agent.log'}",
        )
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise TunnelTuiError("the agent sent a malformed reply")
    if not reply.get("ok", False) and "error" in reply:
        raise protocol.error_from_reply(reply)
    return reply


class AgentClient:
    """One short connection per call; safe to use from any thread."""

    def __init__(self, home: Path | None = None, *, timeout: float = CONNECT_TIMEOUT) -> None:
        self.address = resolve(home)
        self.timeout = timeout

    def _open(self, timeout: float | None) -> socket.socket:
        check_socket_dir(self.address)
        check_owned(self.address.socket)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fsencode(self.address.socket))
            # The checks above race with a rename: what counts is who answers.
            require_own_peer(sock, self.address.socket)
        except OSError as exc:
            sock.close()
            raise _connect_error(self.address, exc) from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)
        return sock

    def call(
        self, op: str, *, timeout: float | None = None, _version: int | None = None, **args: Any
    ) -> dict[str, Any]:
        message = protocol.request(op, next(_ids), **args)
        if _version is not None:
            message["v"] = _version
        with self._open(self.timeout if timeout is None else timeout) as sock:
            try:
                sock.sendall(protocol.encode(message))
                with sock.makefile("rb") as stream:
                    line = stream.readline()
            except TimeoutError:
                raise TunnelTuiError(
                    f"the agent did not answer `{op}` in time",
                    hint=f"see {self.address.home / 'logs' / 'agent.log'}",
                ) from None
            except (ConnectionResetError, BrokenPipeError):
                # Accepted into the backlog of an agent that died before reading it.
                raise AgentNotRunning(self.address) from None
            return _reply(line, self.address)

    def ping(self) -> dict[str, Any]:
        return self.call("ping")

    def call_any_version(self, op: str, **args: Any) -> dict[str, Any]:
        """`ping`, `status` or `shutdown` to an agent of any protocol version (their shape
        never changes): what `agent stop|restart` use to reach an older agent."""
        assert op in ("ping", "status", "shutdown")
        try:
            return self.call(op, **args)
        except AgentVersionMismatch as exc:
            version = exc.agent_version
            if version is None or version < protocol.OLDEST_STOPPABLE:
                raise
            return self.call(op, _version=version, **args)

    def status(self, name: str | None = None) -> list[TunnelStatus]:
        reply = self.call("status", name=name)
        return [TunnelStatus.from_json(item) for item in reply["tunnels"]]

    def up(
        self,
        name: str,
        *,
        timeout: float = 30.0,
        keys: Mapping[str, Secret] | None = None,
        no_keys: str | None = None,
        ssh_auth_sock: str | None = None,
        accept_host_keys: Collection[str] = (),
        wait_for_key: float | None = None,
        db_password: Secret | None = None,
        lease_id: str | None = None,
    ) -> TunnelStatus:
        """Bring NAME up with the private `keys` the caller resolved (those the agent
        holds may be left out); `keys=None`: the caller has none (`no_keys` says why)
        and the agent reads its own store. `ssh_auth_sock`: the caller's ssh-agent.
        `accept_host_keys`: host key fingerprints the user checked, trusted if met.
        `wait_for_key` (seconds): the agent waits for the key (see protocol.py)."""
        args = _up_args(
            name, timeout, keys, no_keys, ssh_auth_sock, wait_for_key, db_password
        )
        if accept_host_keys:
            args["accept_host_keys"] = sorted(accept_host_keys)
        if lease_id is not None:  # exec's own `up`: the tunnel stays the leases'
            args["lease_id"] = lease_id
        reply = self.call("up", timeout=timeout + 5.0, **args)
        return TunnelStatus.from_json(reply["tunnel"])

    def history(self, name: str) -> dict[str, Any] | None:
        """NAME's last 10 minutes (see protocol.py), None when it is not live."""
        reply = self.call("history", name=name)
        history = reply.get("history")
        return history if isinstance(history, dict) else None

    def lease(self, name: str, pid: int) -> dict[str, Any]:
        """{"lease_id", "was_up", "owned"}: process PID holds NAME (see leases.py)."""
        return self.call("lease", name=name, pid=pid)

    def release(self, lease_id: str) -> dict[str, Any]:
        return self.call("release", lease_id=lease_id, timeout=30.0)

    def rotation_wait(
        self, name: str, old_key_id: str, new_key_id: str, keys: Mapping[str, Secret],
        seconds: float,
    ) -> str:
        """rotate-key --background: the agent waits for the new key; the deadline (ISO)."""
        reply = self.call(
            "rotation-wait", timeout=60.0, name=name, old_key_id=old_key_id,
            new_key_id=new_key_id, keys={k: v.reveal() for k, v in keys.items()},
            seconds=seconds,
        )  # fmt: skip
        return str(reply["until"])

    def secrets_held(self, name: str) -> dict[str, Any]:
        """{"keys": {key id: held?}, "all": bool, "vault_unlocked": bool}: never a secret."""
        return self.call("secrets-held", name=name)

    def down(self, name: str) -> TunnelStatus:
        return TunnelStatus.from_json(self.call("down", timeout=30.0, name=name)["tunnel"])

    def switch_key(
        self, old_key_id: str, new_key_id: str, new_private_key: Secret | None = None
    ) -> list[str]:
        """Move live tunnels from the old key to the new one; the caller sends the new
        private key (None: the agent reads it from its own store)."""
        reply = self.call(
            "switch-key", timeout=60.0, **_switch_args(old_key_id, new_key_id, new_private_key)
        )
        return list(reply.get("moved", []))

    def reload(self) -> None:
        self.call("reload")

    def vault_unlock(self, passphrase: Secret, *, create: bool = False) -> dict[str, Any]:
        return self.call(
            "vault-unlock", timeout=60.0, passphrase=passphrase.reveal(), create=create
        )

    def vault_lock(self) -> dict[str, Any]:
        return self.call("vault-lock")

    def vault_status(self) -> dict[str, Any]:
        return self.call("vault-status")

    def shutdown(self) -> None:
        self.call("shutdown", timeout=30.0)

    def secret_exists(self, name: str) -> bool:
        return bool(self.call("secret-exists", timeout=30.0, name=name).get("exists"))

    def secret_set(self, name: str, value: Secret) -> None:
        self.call("secret-set", timeout=30.0, name=name, value=value.reveal())

    def secret_delete(self, name: str) -> None:
        self.call("secret-delete", timeout=30.0, name=name)

    def secret_copy(self, name: str, to: str) -> bool:
        return bool(self.call("secret-copy", timeout=30.0, name=name, to=to).get("copied"))

    def events(self, *, interval: float = 1.0) -> Iterator[TunnelStatus]:
        """Every tunnel's status now, then each change (and byte counters every
        `interval` seconds while they move), until the agent stops. Subscribed when
        this returns, so nothing that happens afterwards is missed."""
        sock = self._open(None)
        try:
            stream = sock.makefile("rb")
            sock.sendall(protocol.encode(protocol.request("events", next(_ids), interval=interval)))
            _reply(stream.readline(), self.address)
        except BaseException:
            sock.close()
            raise
        return self._event_stream(sock, stream)

    @staticmethod
    def _event_stream(sock: socket.socket, stream: Any) -> Iterator[TunnelStatus]:
        with sock, stream:
            for line in stream:
                event = json.loads(line)
                if "tunnel" in event:
                    yield TunnelStatus.from_json(event["tunnel"])


class AgentVaultStore:
    """A write-only SecretStore into the vault the agent holds unlocked: lets CLI
    commands that store new secrets (add, key generate/import, remove) work in an SSH
    login after `tunnel-tui vault unlock`, with no passphrase in argv or env. The agent
    never hands a secret back: `get` answers None for an absent entry and refuses for a
    present one (work that needs a key runs where the key is)."""

    backend_name = "vault (unlocked in the agent)"
    write_only = True  # `get` of a present entry refuses: an overwrite cannot be undone

    def __init__(self, client: AgentClient) -> None:
        self._client = client

    @classmethod
    def find(cls, home: Path | None = None) -> AgentVaultStore | None:
        """The store if this home's agent runs and holds the vault unlocked, else None."""
        client = AgentClient(home)
        try:
            state = client.vault_status()
        except (AgentNotRunning, AgentSocketForeign):
            return None
        return cls(client) if state.get("unlocked") else None

    def exists(self, name: str) -> bool:
        return self._client.secret_exists(name)

    def get(self, name: str) -> Secret | None:
        if not self._client.secret_exists(name):
            return None
        raise SecretStoreError(
            f"{name} is in the vault the agent holds, and the agent never hands out a secret",
            hint="run this where the keyring works, or where the vault is unlocked in the "
            "command itself (it asks for the passphrase on a terminal)",
        )

    def set(self, name: str, value: Secret) -> None:
        self._client.secret_set(name, value)

    def delete(self, name: str) -> None:
        self._client.secret_delete(name)

    def copy(self, name: str, to: str) -> bool:
        """Copy an entry inside the vault, which never hands it out; False if absent."""
        return self._client.secret_copy(name, to)


class AsyncAgentClient:
    """The same API for asyncio code (the TUI): one connection per call."""

    def __init__(self, home: Path | None = None, *, timeout: float = CONNECT_TIMEOUT) -> None:
        self.address = resolve(home)
        self.timeout = timeout

    async def _open(self) -> tuple[Any, Any]:
        import asyncio

        check_socket_dir(self.address)
        check_owned(self.address.socket)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(
                    str(self.address.socket), limit=protocol.MAX_REQUEST_BYTES * 16
                ),
                self.timeout,
            )
        except OSError as exc:
            raise _connect_error(self.address, exc) from None
        try:  # the checks above race with a rename: what counts is who answers
            require_own_peer(writer.get_extra_info("socket"), self.address.socket)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    async def call(self, op: str, *, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        import asyncio

        reader, writer = await self._open()
        try:
            writer.write(protocol.encode(protocol.request(op, next(_ids), **args)))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout or self.timeout)
            return _reply(line, self.address)
        except (ConnectionResetError, BrokenPipeError):
            # Accepted into the backlog of an agent that died before reading it.
            raise AgentNotRunning(self.address) from None
        finally:
            writer.close()

    async def ping(self) -> dict[str, Any]:
        return await self.call("ping")

    async def status(self, name: str | None = None) -> list[TunnelStatus]:
        reply = await self.call("status", name=name)
        return [TunnelStatus.from_json(item) for item in reply["tunnels"]]

    async def up(
        self,
        name: str,
        *,
        timeout: float = 30.0,
        keys: Mapping[str, Secret] | None = None,
        no_keys: str | None = None,
        ssh_auth_sock: str | None = None,
        wait_for_key: float | None = None,
        db_password: Secret | None = None,
    ) -> TunnelStatus:
        args = _up_args(
            name, timeout, keys, no_keys, ssh_auth_sock, wait_for_key, db_password
        )
        reply = await self.call("up", timeout=timeout + 5.0, **args)
        return TunnelStatus.from_json(reply["tunnel"])

    async def history(self, name: str) -> dict[str, Any] | None:
        reply = await self.call("history", name=name)
        history = reply.get("history")
        return history if isinstance(history, dict) else None

    async def secrets_held(self, name: str) -> dict[str, Any]:
        return await self.call("secrets-held", name=name)

    async def down(self, name: str) -> TunnelStatus:
        reply = await self.call("down", timeout=30.0, name=name)
        return TunnelStatus.from_json(reply["tunnel"])

    async def switch_key(
        self, old_key_id: str, new_key_id: str, new_private_key: Secret | None = None
    ) -> list[str]:
        reply = await self.call(
            "switch-key", timeout=60.0, **_switch_args(old_key_id, new_key_id, new_private_key)
        )
        return list(reply.get("moved", []))

    async def vault_unlock(self, passphrase: Secret, *, create: bool = False) -> dict[str, Any]:
        return await self.call(
            "vault-unlock", timeout=60.0, passphrase=passphrase.reveal(), create=create
        )

    async def vault_lock(self) -> None:
        await self.call("vault-lock")

    async def vault_status(self) -> dict[str, Any]:
        return await self.call("vault-status")

    async def reload(self) -> None:
        await self.call("reload")

    async def shutdown(self) -> None:
        await self.call("shutdown", timeout=30.0)

    async def events(self, *, interval: float = 1.0) -> AsyncIterator[TunnelStatus]:
        reader, writer = await self._open()
        try:
            writer.write(protocol.encode(protocol.request("events", next(_ids), interval=interval)))
            await writer.drain()
            _reply(await reader.readline(), self.address)
            while line := await reader.readline():
                event = json.loads(line)
                if "tunnel" in event:
                    yield TunnelStatus.from_json(event["tunnel"])
        finally:
            writer.close()


def start_agent(home: Path | None = None) -> subprocess.Popen[bytes]:
    """Launch a detached agent for `home` (its own session, no terminal)."""
    import subprocess

    address = resolve(home)
    from tunnel_tui.core import paths

    logs = paths.ensure_private_dir(paths.log_dir(address.home))
    stderr_fd = os.open(logs / "agent-stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tunnel_tui.agent", "--home", str(address.home)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr_fd,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    finally:
        os.close(stderr_fd)


def ensure_agent(home: Path | None = None, *, timeout: float = START_TIMEOUT) -> AgentClient:
    """A client of a running agent, starting one if none answers (bounded wait)."""
    client = AgentClient(home)
    try:
        client.ping()
        return client
    except AgentNotRunning:
        pass
    process = start_agent(home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.ping()
            return client
        except AgentNotRunning:
            pass
        code = process.poll()
        # Exit 0 means another agent won the start race: keep waiting for it.
        if code not in (None, 0):
            raise TunnelTuiError(
                f"the agent failed to start (exit code {code})",
                hint=f"see {client.address.home / 'logs' / 'agent-stderr.log'}",
            )
        time.sleep(0.02)  # a blocking CLI poll, bounded by the deadline
    raise TunnelTuiError(
        f"the agent did not answer within {timeout:.0f} s",
        hint=f"see {client.address.home / 'logs' / 'agent.log'}",
    )
