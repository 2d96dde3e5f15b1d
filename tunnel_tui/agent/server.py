"""The agent's Unix socket server: one JSON line per request, peer uid checked.

Defence in depth: the socket directory is 0700, the socket 0600, and every
connection's peer credentials (SO_PEERCRED) must carry our uid. A bad request
(garbage, too large, unknown op) gets an error reply; nothing a client sends can
stop the agent except `shutdown` from its own user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from tunnel_tui import __version__
from tunnel_tui.agent import protocol
from tunnel_tui.agent.address import AgentAddress, check_owned
from tunnel_tui.agent.history import History
from tunnel_tui.agent.leases import Leases
from tunnel_tui.agent.peercred import peer_uid
from tunnel_tui.agent.service import CallerSecrets, TunnelService
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.known_hosts import parse_fingerprints
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState

log = logging.getLogger("tunnel_tui.agent")

IDLE_CLIENT_TIMEOUT = 300.0


class AgentServer:
    def __init__(
        self,
        service: TunnelService,
        address: AgentAddress,
        *,
        request_shutdown: Callable[[], None],
    ) -> None:
        self.service = service
        self.address = address
        self._request_shutdown = request_shutdown
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self._ops: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "ping": self._ping,
            "status": self._status,
            "up": self._up,
            "down": self._down,
            "reload": self._reload,
            "shutdown": self._shutdown,
            "switch-key": self._switch_key,
            "vault-unlock": self._vault_unlock,
            "vault-lock": self._vault_lock,
            "vault-status": self._vault_status,
            "secrets-held": self._secrets_held,
            "secret-exists": self._secret_exists,
            "secret-set": self._secret_set,
            "secret-delete": self._secret_delete,
            "secret-copy": self._secret_copy,
            "rotation-wait": self._rotation_wait,
            "lease": self._lease,
            "release": self._release,
            "history": self._history,
            "lease-password-file": self._lease_password_file,
            "key-work": self._key_work,
        }
        self.leases = Leases(self._state_of, service.down)
        self.history = History(service.statuses)  # per-second samples, memory only

    async def start(self) -> None:
        """Bind the socket; the caller holds the agent lock, so any file there is stale."""
        path = self.address.socket
        check_owned(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            log.info("removed a stale socket at %s", path)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._serve_client, str(path), limit=protocol.MAX_REQUEST_BYTES + 2
            )
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        if self.address.is_fallback:
            from tunnel_tui.core.atomic import write_private_file

            write_private_file(self.address.addr_file, f"{path}\n".encode())
        log.info("listening on %s", path)
        self.history.start()

    async def rebind(self) -> None:
        """Listen again after the socket file was removed (a /tmp cleaner, a person)."""
        if self._server is not None:
            self._server.close()
        await self.start()

    async def close(self) -> None:
        await self.leases.aclose()
        await self.history.aclose()
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(self._clients, timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self.remove_socket()

    def remove_socket(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address.socket)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address.addr_file)

    # -- one client ---------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            await self._client_loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only our own shutdown cancels client tasks; ending quietly keeps asyncio
            # from logging a traceback per connected client.
            pass
        except Exception:  # a bug must cost one connection, never the agent
            log.exception("error while serving a client")
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()

    async def _client_loop(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            await self._send(
                writer,
                protocol.error_reply(
                    None,
                    f"this agent belongs to uid {os.getuid()}; uid {uid} may not use it",
                    code=protocol.FORBIDDEN,
                    hint="each user runs their own agent",
                ),
            )
            return
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), IDLE_CLIENT_TIMEOUT)
            except (ValueError, asyncio.LimitOverrunError):
                # Oversized: the rest of the stream cannot be framed reliably; reply and hang up.
                await self._send(
                    writer,
                    protocol.error_reply(
                        None,
                        f"request larger than {protocol.MAX_REQUEST_BYTES} bytes",
                        code=protocol.TOO_LARGE,
                    ),
                )
                return
            except TimeoutError:
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                request = protocol.parse_request(line)
            except protocol.ProtocolError as exc:
                await self._send(
                    writer,
                    protocol.error_reply(None, exc.message, code=exc.code, hint=exc.hint),
                )
                continue
            if request["op"] == "events":
                await self._events(request, reader, writer)
                return
            if request["op"] == "validate":  # a stream too (agent/validation.py)
                await self._validate(request, reader, writer)
                return
            await self._send(writer, await self._dispatch(request))

    async def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        request_id = request.get("id")
        op = request["op"]
        try:
            result = await self._ops[op](request)
        except TunnelTuiError as exc:
            return protocol.error_reply(
                request_id, exc.message, code=protocol.code_for(exc), hint=exc.hint
            )
        except (KeyError, TypeError, ValueError) as exc:
            return protocol.error_reply(
                request_id, f"bad arguments for {op}: {exc}", code=protocol.BAD_REQUEST
            )
        except Exception as exc:
            log.exception("op %s failed", op)
            return protocol.error_reply(
                request_id,
                f"internal error in the agent ({type(exc).__name__})",
                code=protocol.INTERNAL,
                hint=f"see {self.address.home / 'logs' / 'agent.log'}",
            )
        return protocol.ok_reply(request_id, **result)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(protocol.encode(message))
        await writer.drain()

    # -- ops ------------------------------------------------------------------------

    async def _ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "protocol": protocol.VERSION,
            "home": str(self.address.home),
        }

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _optional_str(request, "name")
        return {"tunnels": [s.to_json() for s in self.service.statuses(name)]}

    async def _up(self, request: dict[str, Any]) -> dict[str, Any]:
        wait = float(request.get("wait") or 30.0)
        secrets = _caller_secrets(request)
        if not request.get("lease_id"):  # a plain `up`: wanted beyond any exec's lease
            self.leases.pin(_str(request, "name"))
        wait_for_key = request.get("wait_for_key")
        if wait_for_key is not None:  # seconds; the CLI asks for 1-60 minutes
            seconds = min(max(float(wait_for_key), 1.0), 3600.0)
            status = await self.service.waits.start(_str(request, "name"), seconds, secrets)
            return {"tunnel": status.to_json()}
        status = await self.service.up(
            _str(request, "name"), wait=min(max(wait, 0.1), 3600.0), secrets=secrets,
            accept_host_keys=parse_fingerprints(request.get("accept_host_keys") or ()),
        )
        return {"tunnel": status.to_json()}

    async def _lease(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "name")
        self.service.connection(name)  # NotFoundError for an unknown name
        return self.leases.take(name, int(request["pid"]))

    async def _history(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "name")
        self.service.connection(name)  # NotFoundError for an unknown name
        if self._state_of(name) in (TunnelState.DOWN, TunnelState.FAILED):
            return {"history": None}  # gone since the last sample
        return {"history": self.history.to_json(name)}

    async def _lease_password_file(self, request: dict[str, Any]) -> dict[str, Any]:
        from tunnel_tui.agent.exec_files import write_password_file

        lease = self.leases.get(_str(request, "lease_id"))
        port = int(request["port"])
        if not 0 < port < 65536:
            raise protocol.ProtocolError("`port` must be a TCP port")
        store = self.service.vault_store()  # SecretStoreError unless the vault is held here
        path = await write_password_file(
            store, self.service.home, self.service.connection(lease.name), port, lease.pid
        )
        if path is not None:
            self.leases.attach(lease.id, path)
        return {"path": str(path) if path is not None else None}

    async def _release(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.leases.release(_str(request, "lease_id"))

    def _state_of(self, name: str) -> Any:
        return next((s.state for s in self.service.statuses(name)), None)

    async def _rotation_wait(self, request: dict[str, Any]) -> dict[str, Any]:
        raw = request.pop("keys", None)
        if not (isinstance(raw, dict) and raw and all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()
        )):
            raise protocol.ProtocolError("`keys` must map key ids to private keys")
        keys = {k: Secret(v) for k, v in raw.items()}
        seconds = min(max(float(request.get("seconds") or 3600.0), 1.0), 3600.0)
        until = await self.service.rotation_waits.start(
            _str(request, "name"), _str(request, "old_key_id"), _str(request, "new_key_id"),
            keys, seconds,
        )
        return {"until": until.isoformat().replace("+00:00", "Z")}

    async def _secrets_held(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.service.secrets_held(_str(request, "name"))

    async def _down(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"tunnel": (await self.service.down(_str(request, "name"))).to_json()}

    async def _reload(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"connections": len(self.service.connections(force=True))}

    async def _shutdown(self, request: dict[str, Any]) -> dict[str, Any]:
        log.info("shutdown requested over the socket")
        asyncio.get_running_loop().call_soon(self._request_shutdown)
        return {"pid": os.getpid()}

    async def _switch_key(self, request: dict[str, Any]) -> dict[str, Any]:
        raw = request.pop("new_private_key", None)
        if raw is not None and not isinstance(raw, str):
            raise protocol.ProtocolError("`new_private_key` must be a string or null")
        new_private_key = Secret(raw) if raw else None
        moved = await self.service.switch_key(
            _str(request, "old_key_id"), _str(request, "new_key_id"), new_private_key
        )
        return {"moved": moved}

    async def _vault_unlock(self, request: dict[str, Any]) -> dict[str, Any]:
        passphrase = Secret(_str(request, "passphrase"))
        request.pop("passphrase", None)
        return await self.service.vault_unlock(passphrase, create=bool(request.get("create")))

    async def _vault_lock(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.service.vault_lock()

    async def _vault_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.service.vault_status()

    async def _key_work(self, request: dict[str, Any]) -> dict[str, Any]:
        from tunnel_tui.agent import keywork

        return await keywork.run(self.service.home, self.service.vault_store(), request)

    async def _secret_exists(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"exists": await self.service.secret_exists(_secret_name(request))}

    async def _secret_set(self, request: dict[str, Any]) -> dict[str, Any]:
        value = Secret(_str(request, "value"))
        request.pop("value", None)
        await self.service.secret_set(_secret_name(request), value)
        return {}

    async def _secret_copy(self, request: dict[str, Any]) -> dict[str, Any]:
        source, target = _secret_name(request), _secret_name({"name": request.get("to")})
        if source.split(":", 1)[0] != target.split(":", 1)[0]:
            raise protocol.ProtocolError("`to` must be the same kind of entry as `name`",
                                         code=protocol.USAGE)
        return {"copied": await self.service.secret_copy(source, target)}

    async def _secret_delete(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.service.secret_delete(_secret_name(request))
        return {}

    async def _validate(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        from tunnel_tui.agent import validation

        async def send(message: dict[str, Any]) -> None:
            await self._send(writer, message)

        try:
            await validation.stream(self.service, request, reader, send)
        except TunnelTuiError as exc:
            await send(protocol.error_reply(
                request.get("id"), exc.message, code=protocol.code_for(exc), hint=exc.hint
            ))
        except (TypeError, ValueError) as exc:
            await send(protocol.error_reply(
                request.get("id"), f"bad arguments for validate: {exc}", code=protocol.BAD_REQUEST
            ))

    async def _events(
        self, request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_id = request.get("id")
        try:
            interval = float(request.get("interval") or 1.0)
        except (TypeError, ValueError):
            interval = 1.0
        await self._send(writer, protocol.ok_reply(request_id, subscribed=True))

        async def pump() -> None:
            async for status in self.service.watch(interval):
                message = {"v": protocol.VERSION, "id": request_id, "event": "status"}
                await self._send(writer, {**message, "tunnel": status.to_json()})

        # The client ends a subscription by closing its end: watch for EOF alongside.
        pump_task = asyncio.ensure_future(pump())
        eof_task = asyncio.ensure_future(reader.read())
        try:
            await asyncio.wait({pump_task, eof_task}, return_when=asyncio.FIRST_COMPLETED)
            if pump_task.done() and not pump_task.cancelled() and pump_task.exception():
                log.error("events stream failed", exc_info=pump_task.exception())
        finally:
            for task in (pump_task, eof_task):
                task.cancel()
            await asyncio.gather(pump_task, eof_task, return_exceptions=True)


def _str(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise protocol.ProtocolError(f"`{key}` must be a non-empty string")
    return value


def _caller_secrets(request: dict[str, Any]) -> CallerSecrets:
    """The `secrets` of an `up` request, taken out of the request (nothing below sees
    the raw text; the log redacts any PEM block anyway). Null: the caller has nothing."""
    raw = request.pop("secrets", None)
    if raw is None:
        return CallerSecrets()
    if not isinstance(raw, dict):
        raise protocol.ProtocolError("`secrets` must be an object or null")
    keys = raw.get("keys")
    if keys is not None and not (
        isinstance(keys, dict)
        and all(isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items())
    ):
        raise protocol.ProtocolError("`secrets.keys` must map key ids to private keys, or be null")
    no_keys, sock = raw.get("no_keys"), raw.get("ssh_auth_sock")
    db_password = raw.get("db_password")
    if db_password is not None and not isinstance(db_password, str):
        raise protocol.ProtocolError("`secrets.db_password` must be a string or null")
    if sock is not None and (not isinstance(sock, str) or not sock.startswith("/")):
        raise protocol.ProtocolError("`secrets.ssh_auth_sock` must be an absolute path or null")
    return CallerSecrets(
        keys=None if keys is None else {k: Secret(v) for k, v in keys.items()},
        no_keys=str(no_keys)[:500] if no_keys else None,
        ssh_auth_sock=sock,
        db_password=Secret(db_password) if db_password else None,
    )


def _secret_name(request: dict[str, Any]) -> str:
    name = _str(request, "name")
    if not name.startswith(protocol.SECRET_PREFIXES):
        raise protocol.ProtocolError(
            f"`name` must start with {' or '.join(protocol.SECRET_PREFIXES)}", code=protocol.USAGE
        )
    return name


def _optional_str(request: dict[str, Any], key: str) -> str | None:
    value = request.get(key)
    if value is None:
        return None
    return _str(request, key)
