"""Shared SSH connections: one per (hops, users, keys, keepalive), refcounted.

Every tunnel through the same bastion with the same key uses one `SshLink`.
A link that nobody holds any more closes once its last channel has finished
(so a key switch lets running queries end on the old connection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any

import asyncssh

from tunnel_tui.core.client_keys import ClientKey
from tunnel_tui.core.model import Connection, Keepalive, SshEndpoint
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.ssh import KnownHostsLike, close_all, connect_hops

log = logging.getLogger(__name__)

LinkKey = tuple[tuple[tuple[str, int, str, str], ...], Keepalive]


def link_key(conn: Connection, key_id: str | None = None) -> LinkKey:
    default = key_id or conn.key_id
    hops = tuple((h.host, h.port, h.user, h.key_id or default) for h in conn.hops)
    return hops, conn.keepalive


class SshLink:
    """One chain of SSH connections (jump hosts..., bastion)."""

    def __init__(
        self, key: LinkKey, hops: tuple[SshEndpoint, ...],
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    ) -> None:
        self.key = key
        self._spawn = spawn or _fire_and_forget
        self.hops = hops
        self.conns: list[asyncssh.SSHClientConnection] = []
        self.refs = 0
        self.channels = 0
        self.alive = False
        self.released = False
        self.lost_reason: str | None = None
        self._watchers: list[Callable[[SshLink, str], None]] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._closing = False
        # The first hop socket's write joiner (transport.CoalescingTransport) or None.
        self.writer: Any = None

    @property
    def bastion(self) -> asyncssh.SSHClientConnection:
        return self.conns[-1]

    def on_dead(self, callback: Callable[[SshLink, str], None]) -> Callable[[], None]:
        self._watchers.append(callback)

        def remove() -> None:
            if callback in self._watchers:
                self._watchers.remove(callback)

        return remove

    def _lost(self, index: int, exc: Exception) -> None:
        hop = self.hops[index]
        label = "bastion" if index == len(self.hops) - 1 else f"jump host {hop.display}"
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if self.lost_reason is None:
            self.lost_reason = f"{label} connection lost: {reason}"

    def start_watch(self, on_closed: Callable[[SshLink], None]) -> None:
        async def watch() -> None:
            await self.bastion.wait_closed()  # returns normally even on a dead peer
            self.alive = False
            if self._closing:
                return
            reason = self.lost_reason or "the SSH connection closed"
            log.warning("%s: %s", self.hops[-1].display, reason)
            on_closed(self)
            for callback in list(self._watchers):
                callback(self, reason)
            await close_all(self.conns)

        self._watch_task = asyncio.get_running_loop().create_task(watch())

    def channel_opened(self) -> None:
        self.channels += 1

    def channel_closed(self) -> None:
        self.channels -= 1
        if self.released and self.channels <= 0:
            self._spawn(self.close())

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.alive = False
        await close_all(self.conns)
        if self._watch_task is not None:
            try:
                await asyncio.wait_for(self._watch_task, 5.0)
            except (TimeoutError, asyncio.CancelledError):
                self._watch_task.cancel()


class SshPool:
    def __init__(self, known_hosts: KnownHostsLike, settings: EngineSettings) -> None:
        self._known_hosts = known_hosts
        self._settings = settings
        self._links: dict[LinkKey, SshLink] = {}
        self._pending: dict[LinkKey, asyncio.Future[SshLink]] = {}
        self._all: set[SshLink] = set()
        self._background: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a link close in the background, awaited by aclose()."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def acquire(
        self,
        conn: Connection,
        keys: Mapping[str, ClientKey],
        *,
        key_id: str | None = None,
        accept_new: bool = False,
        accept_keys: Collection[str] = (),
        fresh: bool = False,
        key_comments: Mapping[str, str] | None = None,
    ) -> SshLink:
        """A live link for this connection's hops (shared unless `fresh`)."""
        key = link_key(conn, key_id)
        if not fresh:
            link = self._links.get(key)
            if link is not None and link.alive:
                link.refs += 1
                return link
            pending = self._pending.get(key)
            if pending is not None:
                link = await asyncio.shield(pending)
                if link.alive:
                    link.refs += 1
                    return link
        future: asyncio.Future[SshLink] = asyncio.get_running_loop().create_future()
        if not fresh:
            self._pending[key] = future
        try:
            link = SshLink(key, conn.hops, self._spawn)
            writers: list[Any] = []
            link.conns = await connect_hops(
                conn.hops, keys, self._known_hosts, key_id=key_id or conn.key_id,
                accept_new=accept_new, accept_keys=accept_keys, keepalive=conn.keepalive,
                settings=self._settings, on_lost=link._lost, writers=writers,
                key_comments=key_comments,
            )
            link.writer = writers[0] if writers else None
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: waiters get it through shield()
            raise
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]
        link.alive = True
        link.refs = 1
        self._links[key] = link
        self._all.add(link)
        link.start_watch(self._forget)
        future.set_result(link)
        return link

    def _forget(self, link: SshLink) -> None:
        if self._links.get(link.key) is link:
            del self._links[link.key]
        self._all.discard(link)

    def release(self, link: SshLink) -> None:
        """Drop one reference; the link closes when unused and its channels are done."""
        link.refs -= 1
        if link.refs > 0:
            return
        link.released = True
        self._forget(link)
        if link.channels <= 0:
            self._spawn(link.close())

    @property
    def live_links(self) -> list[SshLink]:
        return [link for link in self._all if link.alive]

    async def aclose(self) -> None:
        links = list(self._all)
        self._all.clear()
        self._links.clear()
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._background:
            await asyncio.wait(set(self._background), timeout=10)


def _fire_and_forget(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.get_running_loop().create_task(coro)


def describe(link: Any) -> str:
    return " → ".join(h.display for h in link.hops)
