"""TunnelEngine: the live tunnels of one process (the agent, `forward`, tests).

State changes are published at once; byte and channel counters are coalesced and
published at most every `settings.stats_interval` seconds per tunnel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping

from tunnel_tui.core.client_keys import ClientKey
from tunnel_tui.core.errors import NotFoundError
from tunnel_tui.core.model import Connection
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.engine.memory import release_free_memory
from tunnel_tui.engine.pool import SshPool
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.ssh import KnownHostsLike
from tunnel_tui.engine.tunnel import LiveTunnel

log = logging.getLogger(__name__)

Subscriber = Callable[[TunnelStatus], None]


class TunnelEngine:
    def __init__(
        self, known_hosts: KnownHostsLike, settings: EngineSettings | None = None
    ) -> None:
        self.known_hosts = known_hosts
        self.settings = settings or EngineSettings()
        self.pool = SshPool(known_hosts, self.settings)
        self._tunnels: dict[str, LiveTunnel] = {}
        self._subscribers: list[Subscriber] = []
        self._published: dict[str, tuple[int, int, int]] = {}
        self._stats_task: asyncio.Task[None] | None = None
        self._starting: dict[str, asyncio.Future[TunnelStatus]] = {}

    # ------------------------------------------------------------- control

    async def start(
        self, conn: Connection, keys: Mapping[str, ClientKey], *, accept_new_host_key: bool = False,
        accept_host_keys: Collection[str] = (), key_comments: Mapping[str, str] | None = None,
    ) -> TunnelStatus:
        """Bring a tunnel up; returns once SSH auth succeeded and the listener is bound.
        `key_comments` (key id -> `tunnel-tui:<key name>`) name the key in an auth hint.

        Already up: returns its status (a no-op). Raises the typed TunnelError
        subclasses (BastionUnreachable, AuthRejected, HostKeyUnknown/Changed,
        LocalPortInUse, KeyMissing) with nothing left bound.
        """
        existing = self._tunnels.get(conn.name)
        retry = (TunnelState.FAILED, TunnelState.WAITING_FOR_SECRET)
        if existing is not None and existing.state not in retry:
            return existing.status()
        if existing is not None:  # failed for good earlier, or new secrets: start afresh
            await self.stop(conn.name)
        pending = self._starting.get(conn.name)
        if pending is not None:
            return await asyncio.shield(pending)
        self._ensure_stats_task()
        tunnel = LiveTunnel(
            conn, keys, self.pool, self.settings, self._changed,
            accept_new=accept_new_host_key, accept_keys=accept_host_keys,
            key_comments=key_comments,
        )
        future: asyncio.Future[TunnelStatus] = asyncio.get_running_loop().create_future()
        self._starting[conn.name] = future
        try:
            status = await tunnel.start()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._starting[conn.name]
        self._tunnels[conn.name] = tunnel
        future.set_result(status)
        return status

    async def stop(self, name: str) -> None:
        tunnel = self._tunnels.pop(name, None)
        if tunnel is None:
            raise NotFoundError(f"no tunnel named {name} is running")
        await tunnel.stop()
        self._published.pop(name, None)

    def status(self, name: str) -> TunnelStatus:
        tunnel = self._tunnels.get(name)
        if tunnel is None:
            raise NotFoundError(f"no tunnel named {name} is running")
        return tunnel.status()

    def statuses(self) -> list[TunnelStatus]:
        return [t.status() for t in self._tunnels.values()]

    def tunnel(self, name: str) -> LiveTunnel:
        return self._tunnels[name]

    async def switch_key(
        self, old_key_id: str, new_key_id: str, new_private: Secret, new_comment: str = "",
    ) -> list[str]:
        """Move every live tunnel using `old_key_id` to the new key.

        For each: a new SSH connection with the new key first (so a rejected key
        changes nothing), then new clients use it; channels already open finish on
        the old connection, which closes after its last channel.
        """
        moved: list[str] = []
        for name, tunnel in list(self._tunnels.items()):
            conn = tunnel.conn
            uses = conn.key_id == old_key_id or any(h.key_id == old_key_id for h in conn.jumps)
            if not uses:
                continue
            jumps = tuple(
                dataclasses.replace(h, key_id=new_key_id) if h.key_id == old_key_id else h
                for h in conn.jumps
            )
            new_conn = dataclasses.replace(
                conn, key_id=new_key_id if conn.key_id == old_key_id else conn.key_id,
                jumps=jumps,
            )
            keys = {k: v for k, v in tunnel.keys.items() if k != old_key_id}
            keys[new_key_id] = new_private
            if new_comment:  # `tunnel-tui:<key name>` in a later auth hint
                tunnel.key_comments[new_key_id] = new_comment
            await tunnel.switch_link(new_conn, keys)
            moved.append(name)
        return moved

    # ------------------------------------------------------------- events

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, status: TunnelStatus) -> None:
        self._published[status.name] = (status.bytes_in, status.bytes_out, status.channels)
        for callback in list(self._subscribers):
            try:
                callback(status)
            except Exception:  # a broken subscriber must not break the engine
                log.exception("tunnel status subscriber failed")

    def _changed(self, tunnel: LiveTunnel) -> None:
        self._emit(tunnel.status())

    def _ensure_stats_task(self) -> None:
        if self._stats_task is None or self._stats_task.done():
            self._stats_task = asyncio.get_running_loop().create_task(self._publish_counters())

    async def _publish_counters(self) -> None:
        trim_after = self.settings.trim_after_bytes
        moved = trimmed_at = 0  # bytes carried by all tunnels; at the last trim
        while True:
            await asyncio.sleep(self.settings.stats_interval)
            busy = False
            for name, tunnel in list(self._tunnels.items()):
                c = tunnel.counters
                published = self._published.get(name)
                if published != (c.bytes_in, c.bytes_out, c.channels):
                    if published is not None:
                        delta = c.bytes_in + c.bytes_out - published[0] - published[1]
                        moved += max(delta, 0)
                        busy = busy or delta > 0
                    self._emit(tunnel.status())
            if trim_after and not busy and moved - trimmed_at >= trim_after:
                trimmed_at = moved
                release_free_memory()  # quiet after a burst (engine/memory.py)

    # ------------------------------------------------------------- shutdown

    async def aclose(self) -> None:
        for name in list(self._tunnels):
            await self.stop(name)
        if self._stats_task is not None:
            self._stats_task.cancel()
            try:
                await self._stats_task
            except asyncio.CancelledError:
                pass
            self._stats_task = None
        await self.pool.aclose()

    async def __aenter__(self) -> TunnelEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
