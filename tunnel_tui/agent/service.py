"""What the agent does: owns one TunnelEngine, brings tunnels up and down, merges
live tunnels with the configured ones for `status`, and fans engine events out to
`events` subscribers.

Secrets come from the caller (DESIGN.md): `up` and `switch-key` carry the private keys
the caller resolved in its own session. The agent keeps them only inside the live
tunnels that need them (reconnects need them) and forgets them with the tunnel (`down`,
a failure for good), unless another live tunnel uses the same key. It reads its own
keyring or the vault it holds unlocked only when the caller has neither (a plain SSH
login). No reply ever carries a secret. Status and down never touch a secret store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunnel_tui.agent.autostart import Autostart
from tunnel_tui.agent.protocol import SecretsNeeded
from tunnel_tui.agent.rotation_wait import RotationWaits
from tunnel_tui.agent.snapshot import down_status, unknown
from tunnel_tui.agent.waiting import KeyWaits
from tunnel_tui.core import paths
from tunnel_tui.core.client_keys import ClientKey, private_of
from tunnel_tui.core.config import ConfigCache
from tunnel_tui.core.errors import SecretStoreError, TunnelError, TunnelTuiError, UsageError
from tunnel_tui.core.logging import redact, register_secret
from tunnel_tui.core.model import Connection, Key
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState, TunnelStatus

log = logging.getLogger("tunnel_tui.agent")

ACTIVE = (TunnelState.UP, TunnelState.CONNECTING, TunnelState.RECONNECTING)
DEFAULT_VAULT_IDLE = 15 * 60.0


@dataclass(frozen=True)
class CallerSecrets:
    """What the caller of `up` brought from its own session.

    `keys`: the private keys it read (keys the agent holds may be left out); None when
    it has no keyring and no vault (`no_keys` says why): the agent then reads its own
    store. `ssh_auth_sock`: the caller's ssh-agent, for keys that live there (never the
    agent's own environment's: the agent outlives the session it was started from)."""

    keys: dict[str, Secret] | None = field(default=None, repr=False)
    no_keys: str | None = None
    ssh_auth_sock: str | None = None
    # `up --wait-for-key`: the database password for validate's checks (None: none stored)
    db_password: Secret | None = field(default=None, repr=False)


def _no_private(key_id: str) -> Secret:
    raise AssertionError(f"{key_id} lives in an ssh-agent: no private key to read")


def key_ids_of(conn: Connection) -> list[str]:
    """The keys a tunnel needs: its own and any hop's, in order, once each."""
    return list(dict.fromkeys([conn.key_id] + [hop.key_id for hop in conn.hops if hop.key_id]))


@dataclass(eq=False)  # identity semantics: subscribers live in a set
class _Subscriber:
    pending: dict[str, TunnelStatus] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class TunnelService:
    def __init__(
        self,
        home: Path,
        *,
        engine_factory: Callable[[], Any] | None = None,
        vault_idle: float | None = None,
        alert: Callable[[TunnelStatus], None] | None = None,
    ) -> None:
        self.home = home
        self._engine_factory = engine_factory or self._default_engine
        self._engine: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[_Subscriber] = set()
        self._failures: dict[str, TunnelStatus] = {}
        self._states: dict[str, TunnelState] = {}
        self._starting: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._config = ConfigCache(home)
        self._config_read = False
        self._vault: Secret | None = None
        self._vault_idle = (
            vault_idle
            if vault_idle is not None
            else _env_float("TUNNEL_TUI_VAULT_IDLE", DEFAULT_VAULT_IDLE)
        )
        self._vault_timer: asyncio.TimerHandle | None = None
        self._vault_store: Any = None  # the opened Vault, for CLI secret requests
        self._alert = alert
        self.waits = KeyWaits(self)  # up --wait-for-key (agent/waiting.py)
        self.autostart = Autostart(self)  # connections marked autostart (agent/autostart.py)
        self.rotation_waits = RotationWaits(self, self.waits)  # rotate-key --background

    # -- engine -----------------------------------------------------------------

    def _default_engine(self) -> Any:
        from tunnel_tui.core.known_hosts import KnownHosts
        from tunnel_tui.engine import TunnelEngine

        # Trust is read on every connect, so hosts accepted by `validate` meanwhile count.
        return TunnelEngine(KnownHosts(paths.known_hosts_path(self.home)))

    def engine(self) -> Any:
        if self._engine is None:
            self._loop = asyncio.get_running_loop()
            self._engine = self._engine_factory()
            self._unsubscribe = self._engine.subscribe(self._on_engine_event)
        return self._engine

    def _live(self) -> dict[str, TunnelStatus]:
        if self._engine is None:
            return {}
        return {status.name: status for status in self._engine.statuses()}

    def _live_one(self, name: str) -> TunnelStatus | None:
        if self._engine is None:
            return None
        try:
            return self._engine.tunnel(name).status()  # type: ignore[no-any-return]
        except KeyError:
            return None

    async def resume(self) -> None:
        """At agent start: the waits for a key recorded by the previous agent, then the
        connections marked autostart. A config that cannot be read costs these (said in
        the log), never the agent's start."""
        for part in (self.waits.resume, self.rotation_waits.resume):
            try:
                await part()
            except TunnelTuiError as exc:
                log.warning("waits not resumed: %s", exc.message)
        self.autostart.start()

    async def aclose(self) -> None:
        await self.waits.aclose()
        await self.autostart.aclose()
        await self.rotation_waits.aclose()
        if self._vault_timer is not None:
            self._vault_timer.cancel()
        self._vault = None
        if self._engine is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._engine.aclose()

    # -- config -----------------------------------------------------------------

    def connections(self, *, force: bool = False) -> dict[str, Connection]:
        """The configured connections, re-read whenever the config file changes."""
        cfg, changed = self._config.refresh(force=force)
        if changed and self._config_read:
            log.info("config reloaded: %d connections", len(cfg.connections))
        self._config_read = True
        return cfg.connections

    def key(self, key_id: str) -> Key:
        """A key record (no secret) from the config, cached with the connections: an
        `up` among 100 connections must not parse the config for it."""
        self.connections()  # re-read if the file changed (and say so in the log)
        key = self._config.get().keys.get(key_id)
        if key is None:  # unknown, or written within the cache's stamp: as Catalog says
            from tunnel_tui.core.catalog import Catalog

            return Catalog(self.home).key(key_id)
        return key

    def connection(self, name: str) -> Connection:
        conn = self.connections().get(name)
        if conn is None:
            conn = self.connections(force=True).get(name)
        if conn is None:
            raise unknown(name)
        return conn

    # -- status -----------------------------------------------------------------

    def statuses(self, name: str | None = None) -> list[TunnelStatus]:
        connections = self.connections()
        live = self._live()
        names = list(connections) + sorted(n for n in live if n not in connections)
        if name is not None:
            if name not in names:
                raise unknown(name)
            names = [name]
        result = []
        for each in names:
            status = (
                self.waits.status(each) or self.autostart.status(each) or live.get(each)
                or self._failures.get(each)
            )
            result.append(status or down_status(connections[each]))
        return result

    # -- up / down ----------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def up(
        self, name: str, *, wait: float = 30.0, secrets: CallerSecrets | None = None,
        accept_host_keys: Collection[str] = (),
        note: tuple[str, str | None] | None = None,
    ) -> TunnelStatus:
        """`secrets`: what the caller sent (None: nothing, as from an autostart).
        `accept_host_keys`: fingerprints the user checked (`up --accept-host-key`).
        `note`: (error, hint) the tunnel is up with (the database refused the login)."""
        conn = self.connection(name)
        if self.waits.status(name) is not None:  # waiting for its key: up is a no-op
            return await self.waits.feed(name, secrets or CallerSecrets())
        async with self._lock(name):
            engine = self.engine()
            current = self._live_one(name)
            if current is not None and current.state in ACTIVE:
                return current
            self._starting.add(name)
            try:
                keys = await self._keys_for(conn, secrets or CallerSecrets())
                comments = {key_id: self.key(key_id).line_comment for key_id in keys}
                self._failures.pop(name, None)
                log.info("bringing %s up via %s", name, conn.bastion.display)
                status: TunnelStatus = await asyncio.wait_for(
                    engine.start(conn, keys, accept_host_keys=accept_host_keys,
                                 key_comments=comments), wait)
            except TimeoutError:
                await self._stop_quietly(name)
                error = TunnelError(
                    f"{name} did not come up within {wait:g} s",
                    hint=f"`tunnel-tui validate {name}` shows which step hangs",
                )
                self._record_failure(conn, error)
                raise error from None
            except TunnelTuiError as exc:
                self._record_failure(conn, exc)
                raise
            except Exception as exc:
                # Not one of the engine's typed errors: still a failed tunnel, not a dead agent.
                log.exception("unexpected error while bringing %s up", name)
                error = TunnelError(
                    f"{name} failed: {type(exc).__name__}: {redact(str(exc))}",
                    hint=f"`tunnel-tui validate {name}` checks each step",
                )
                self._record_failure(conn, error)
                raise error from None
            finally:
                self._starting.discard(name)
            if note is not None:  # before any other task can see it up without
                status = self._note_error(name, *note) or status
            log.info("%s up on %s:%s", name, status.local_host, status.local_port)
            if conn.local_port is None and status.local_port:
                # Pinned before the reply (only the first up of a connection pays for it):
                # an agent killed right after `up` must not lose the port users rely on.
                await asyncio.to_thread(self._save_local_port, name, status.local_port)
            return status

    async def down(self, name: str) -> TunnelStatus:
        connections = self.connections()
        live = self._live()
        if name not in connections and name not in live and name not in self._failures:
            self.connection(name)  # re-reads the config: NotFoundError if really unknown
            connections = self.connections()
        await self.waits.cancel(name)
        await self.autostart.cancel(name)
        async with self._lock(name):
            if name in live:
                await self.engine().stop(name)
                log.info("%s down", name)
            self._failures.pop(name, None)
        remaining = self._live().get(name)
        if remaining is not None and remaining.state is not TunnelState.DOWN:
            return remaining
        if name in connections:
            return down_status(connections[name])
        return TunnelStatus(name, TunnelState.DOWN, "127.0.0.1", None, "", "")

    async def _stop_quietly(self, name: str) -> None:
        try:
            await self.engine().stop(name)
        except (TunnelTuiError, OSError, KeyError):
            pass

    async def switch_key(
        self, old_key_id: str, new_key_id: str, new_private_key: Secret | None = None
    ) -> list[str]:
        """Move live tunnels to the new key; `new_private_key` None: the caller has no
        store of its own, so the agent reads it from its own."""
        if new_private_key is None:
            loaded = await asyncio.to_thread(self._load_secrets, [new_key_id])
            private = private_of(loaded[new_key_id])
            if private is None:
                raise UsageError("a key that lives in an ssh-agent is not rotated here")
        else:
            private = new_private_key
        try:
            comment = self.key(new_key_id).line_comment
        except TunnelTuiError:
            comment = ""  # not in the config yet: the hint says "tunnel-tui"
        moved = await self.engine().switch_key(old_key_id, new_key_id, private, comment)
        log.info("switched %d tunnel(s) from key %s to %s", len(moved), old_key_id, new_key_id)
        return list(moved)

    def _note_error(self, name: str, error: str, hint: str | None) -> TunnelStatus | None:
        """An up tunnel with a problem past SSH (the database refused the login)."""
        try:
            tunnel = self.engine().tunnel(name)
        except KeyError:
            return None
        tunnel.last_error, tunnel.hint = error, hint
        status: TunnelStatus = tunnel.status()
        self._publish(status)
        return status

    def _alert_failure(self, name: str) -> None:
        failed = self._failures.get(name)
        if failed is not None and self._alert is not None:
            self._alert(failed)

    def _record_failure(self, conn: Connection, exc: TunnelTuiError) -> None:
        log.warning("%s failed: %s", conn.name, exc.message)
        live = self._live().get(conn.name)
        if live is not None and live.state is TunnelState.FAILED:
            return
        self._failures[conn.name] = dataclasses.replace(
            down_status(conn),
            state=TunnelState.FAILED,
            since=datetime.now(UTC),
            last_error=exc.message,
            hint=exc.hint,
        )
        self._publish(self._failures[conn.name])

    # -- secrets (only on up and switch-key) ---------------------------------------

    def _held(self) -> dict[str, ClientKey]:
        """The keys the live tunnels hold (a tunnel failed for good holds none)."""
        held: dict[str, ClientKey] = {}
        if self._engine is None:
            return held
        for status in self._engine.statuses():
            if status.state is not TunnelState.FAILED:
                held.update(self._engine.tunnel(status.name).keys)
        return held

    def secrets_held(self, name: str) -> dict[str, Any]:
        """Whether the agent holds each key NAME needs: booleans, never a secret."""
        held = self._held()
        keys = {key_id: key_id in held for key_id in key_ids_of(self.connection(name))}
        return {"keys": keys, "all": all(keys.values()), "vault_unlocked": self._vault is not None}

    async def _keys_for(self, conn: Connection, secrets: CallerSecrets) -> dict[str, ClientKey]:
        """What the engine authenticates with, per key id: held by a live tunnel, sent by
        the caller, or (the caller has no store) read from our own store."""
        from tunnel_tui.core.client_keys import resolve

        held = self._held()
        socket = secrets.ssh_auth_sock or ""  # never our own $SSH_AUTH_SOCK
        found: dict[str, ClientKey] = {}
        missing: list[str] = []
        own: list[str] = []
        for key_id in key_ids_of(conn):
            key = self.key(key_id)  # the record only: no secret store is opened
            if key.in_agent and secrets.ssh_auth_sock:
                found[key_id] = resolve(key, _no_private, socket)
            elif key_id in held:
                found[key_id] = held[key_id]
            elif key.in_agent:
                found[key_id] = resolve(key, _no_private, socket)  # says: no ssh-agent
            elif secrets.keys is None:
                own.append(key_id)
            elif key_id in secrets.keys:
                found[key_id] = resolve(key, secrets.keys.__getitem__, socket)
            else:
                missing.append(key_id)
        if missing:
            raise SecretsNeeded(
                f"the agent no longer holds the key(s) {', '.join(missing)} of {conn.name}",
                missing,
                hint=f"run it again: tunnel-tui up {conn.name}",
            )
        if own:
            try:
                found.update(await asyncio.to_thread(self._load_secrets, own, socket))
            except SecretStoreError as exc:
                caller = secrets.no_keys or "no keyring and no vault"
                raise SecretStoreError(
                    f"{conn.name} needs its private key and nobody has it: in this terminal, "
                    f"{caller}; in the agent, {exc.message}",
                    hint=self._nobody_hint(conn.name),
                ) from None
        return found

    def _nobody_hint(self, name: str) -> str:
        """The one command that fixes "nobody has the key": unlock the vault where one
        exists and is locked; else the key is in a desktop keyring, which only a
        terminal of that session reaches (then the agent holds it until `down`)."""
        from tunnel_tui.core import vault as vault_file

        if self._vault is None and vault_file.exists(paths.vault_path(self.home)):
            return "tunnel-tui vault unlock"
        return f"in a terminal where the keyring works (your desktop): tunnel-tui up {name}"

    def _forget_keys_of_failed(self, name: str) -> None:
        """A tunnel failed for good will not reconnect: it needs its keys no more."""
        if self._engine is None:
            return
        try:
            tunnel = self._engine.tunnel(name)
        except KeyError:
            return
        if tunnel.state is TunnelState.FAILED:
            tunnel.keys = {}

    def _load_secrets(
        self, key_ids: list[str], ssh_auth_sock: str | None = None
    ) -> dict[str, ClientKey]:
        from tunnel_tui.core.catalog import Catalog

        catalog = Catalog(self.home, self._own_store())
        return {key_id: catalog.client_key(key_id, ssh_auth_sock or "") for key_id in key_ids}

    def _own_store(self) -> Any:
        """Our store for `up` and switch-key: the vault opened once per unlock (scrypt
        costs ~250 ms here; `up` must not pay it each time), else whatever
        `open_store` picks now (the keyring, probed on every call as before)."""
        passphrase = self.vault_passphrase()
        if self._vault_store is not None and passphrase is not None:
            return self._vault_store
        from tunnel_tui.core import secrets

        store = secrets.open_store(self.home, vault_passphrase=passphrase)
        if store.backend_name == "vault":
            self._vault_store = store  # dropped with the passphrase (lock, idle timeout)
        return store

    def _save_local_port(self, name: str, port: int) -> None:
        from tunnel_tui.core.catalog import Catalog

        try:
            Catalog(self.home).set_local_port(name, port)
        except TunnelTuiError as exc:
            # The tunnel is up; a port that cannot be pinned is worth a log line, not a failure.
            log.warning("could not save local port %d for %s: %s", port, name, exc.message)

    # -- vault ------------------------------------------------------------------

    def vault_passphrase(self) -> Secret | None:
        if self._vault is not None:
            self._arm_vault_timer()
        return self._vault

    async def vault_unlock(self, passphrase: Secret, *, create: bool = False) -> dict[str, Any]:
        from tunnel_tui.agent import vaultkeeper

        register_secret(passphrase.reveal())  # a last line of defence for the log
        await asyncio.to_thread(vaultkeeper.check_or_create, self.home, passphrase, create)
        self._vault = passphrase
        self._arm_vault_timer()
        self.waits.wake()  # tunnels waiting for a secret try again now
        self.autostart.wake()
        log.info("vault unlocked (idle timeout %g s)", self._vault_idle)
        return self.vault_status()

    def vault_lock(self) -> dict[str, Any]:
        self._vault = None
        self._drop_vault_store()
        if self._vault_timer is not None:
            self._vault_timer.cancel()
            self._vault_timer = None
        log.info("vault locked")
        return self.vault_status()

    def vault_status(self) -> dict[str, Any]:
        return {
            "unlocked": self._vault is not None,
            "exists": paths.vault_path(self.home).exists(),
            "idle_timeout": self._vault_idle,
        }

    def _arm_vault_timer(self) -> None:
        if self._vault_timer is not None:
            self._vault_timer.cancel()
        loop: asyncio.AbstractEventLoop | None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = self._loop
        if loop is not None and self._vault_idle > 0:
            self._vault_timer = loop.call_later(self._vault_idle, self._vault_idle_expired)

    def _vault_idle_expired(self) -> None:
        if self._vault is not None:
            log.info("vault locked after %g s idle", self._vault_idle)
        self._vault = None
        self._vault_timer = None
        self._drop_vault_store()

    def _drop_vault_store(self) -> None:
        if self._vault_store is not None:
            self._vault_store.lock()
        self._vault_store = None

    # -- secrets stored by CLI commands (vault only, write-only) --------------------

    def _store_for_cli(self) -> Any:
        """The vault this agent holds unlocked, for a CLI process that has no keyring and
        no passphrase (an SSH login after `vault unlock`): `add` and `key generate` store
        new secrets through it, `remove` deletes them. Nothing is ever read back. Only
        the vault: an agent that uses a desktop keyring is not a door into it."""
        passphrase = self.vault_passphrase()
        if passphrase is None:
            raise SecretStoreError(
                "the vault is locked", hint="unlock it: tunnel-tui vault unlock"
            )
        if self._vault_store is None:
            from tunnel_tui.core import secrets

            store = secrets.open_store(self.home, vault_passphrase=passphrase, create_vault=False)
            if store.backend_name != "vault":
                raise SecretStoreError(
                    f"this agent uses the keyring of its own session ({store.backend_name}), "
                    "not the vault",
                    hint="run the command in that session (where the keyring works)",
                )
            self._vault_store = store
        return self._vault_store

    def vault_store(self) -> Any:
        """The vault this agent holds unlocked (SecretStoreError otherwise): for exec's
        password file, written here (agent/exec_files.py), never sent, and for the SSH
        work of `key-work` and `validate` (agent/keywork.py, agent/validation.py)."""
        return self._store_for_cli()

    async def secret_exists(self, name: str) -> bool:
        store = self._store_for_cli()
        return await asyncio.to_thread(store.get, name) is not None

    async def secret_set(self, name: str, value: Secret) -> None:
        store = self._store_for_cli()
        await asyncio.to_thread(store.set, name, value)

    async def secret_copy(self, name: str, to: str) -> bool:
        """Copy an entry inside the vault (nothing leaves the agent); False if absent."""
        store = self._store_for_cli()

        def copy() -> bool:
            value = store.get(name)
            if value is None:
                return False
            store.set(to, value)
            return True

        return await asyncio.to_thread(copy)

    async def secret_delete(self, name: str) -> None:
        store = self._store_for_cli()
        await asyncio.to_thread(store.delete, name)

    # -- events -----------------------------------------------------------------

    def _on_engine_event(self, status: TunnelStatus) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._publish, status)

    def _publish(self, status: TunnelStatus) -> None:
        previous = self._states.get(status.name)
        self._states[status.name] = status.state
        if status.state is TunnelState.UP:
            self._failures.pop(status.name, None)
        if status.state is TunnelState.FAILED and status.name not in self._starting:
            self._forget_keys_of_failed(status.name)
        if (
            status.state is TunnelState.FAILED
            and previous is not TunnelState.FAILED
            and status.name not in self._starting
        ):
            log.warning("%s failed: %s", status.name, status.last_error)
            if self._alert is not None:
                self._alert(status)
        for subscriber in self._subscribers:
            subscriber.pending[status.name] = status
            subscriber.wakeup.set()

    async def watch(self, interval: float = 1.0) -> AsyncIterator[TunnelStatus]:
        """Every status now, then changes as they happen; counters are sampled every
        `interval` seconds so byte counts move even when the engine is quiet."""
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        sent: dict[str, dict[str, Any]] = {}
        interval = min(max(interval, 0.05), 60.0)
        try:
            for status in self.statuses():
                sent[status.name] = status.to_json()
                yield status
            while True:
                try:
                    await asyncio.wait_for(subscriber.wakeup.wait(), interval)
                    updates = list(subscriber.pending.values())
                except TimeoutError:
                    updates = self.statuses()
                subscriber.wakeup.clear()
                subscriber.pending.clear()
                for status in updates:
                    data = status.to_json()
                    if sent.get(status.name) != data:
                        sent[status.name] = data
                        yield status
        finally:
            self._subscribers.discard(subscriber)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
