"""One live tunnel: a bound local port, an SSH link, its state and counters.

The local port stays bound from `start` to `stop`, across reconnects; while the
link is down new local clients are reset at once. Permanent failures (auth,
host key) end in `failed` without a retry loop; an ssh-agent key whose agent is gone
ends in `waiting-for-secret` (also without a loop) until `up` brings a live agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from tunnel_tui.core.client_keys import ClientKey
from tunnel_tui.core.errors import TunnelError
from tunnel_tui.core.model import Connection
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.engine.errors import AgentKeyUnavailable, ChannelOpenFailed, HopError
from tunnel_tui.engine.forward import Counters, LocalClient
from tunnel_tui.engine.listener import LocalListener
from tunnel_tui.engine.pool import SshLink, SshPool
from tunnel_tui.engine.reconnect import backoff_delay
from tunnel_tui.engine.settings import EngineSettings

log = logging.getLogger(__name__)


class LiveTunnel:
    def __init__(
        self,
        conn: Connection,
        keys: Mapping[str, ClientKey],
        pool: SshPool,
        settings: EngineSettings,
        on_change: Callable[[LiveTunnel], None],
        *,
        accept_new: bool = False,
        accept_keys: Collection[str] = (),
        key_comments: Mapping[str, str] | None = None,
    ) -> None:
        self.conn = conn
        self.key_comments = dict(key_comments or {})  # key id -> tunnel-tui:<key name>
        self._accept_keys = tuple(accept_keys)  # host keys the user checked (first connect)
        self.keys = dict(keys)
        self._pool = pool
        self._settings = settings
        self._on_change = on_change
        self._accept_new = accept_new
        self.target_host = conn.database.host
        self.target_port = conn.database.port
        self.window = settings.window  # a new channel's; grows with the link (forward.py)
        self.max_window = max(settings.window, settings.max_window)
        self.rtt: float | None = None  # lowest channel-open time on the current link
        self.max_pktsize = settings.max_pktsize
        self.hold_reads = settings.hold_reads
        self.counters = Counters()
        self.state = TunnelState.DOWN
        self.since: datetime | None = None
        self.reconnects = 0
        self.last_error: str | None = None
        self.hint: str | None = None
        self.local_port: int | None = conn.local_port
        self.link: SshLink | None = None
        self._unwatch: Callable[[], None] | None = None
        self._listener: LocalListener | None = None
        self._clients: set[LocalClient] = set()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._channel_error = False  # last_error came from a failed forward

    # ------------------------------------------------------------- status

    def status(self) -> TunnelStatus:
        c = self.counters
        return TunnelStatus(
            name=self.conn.name, state=self.state, local_host=self.conn.local_host,
            local_port=self.local_port, bastion=self.conn.bastion.display,
            target=self.conn.database.target, since=self.since, bytes_in=c.bytes_in,
            bytes_out=c.bytes_out, channels=c.channels, reconnects=self.reconnects,
            last_error=self.last_error, hint=self.hint,
        )

    def _set_state(
        self, state: TunnelState, error: str | None = None, hint: str | None = None,
        *, keep_error: bool = False,
    ) -> None:
        if state != self.state:
            self.since = datetime.now(UTC)
        self.state = state
        if not keep_error:
            self.last_error, self.hint = error, hint
            self._channel_error = False
        self._on_change(self)

    # ------------------------------------------------------------- ForwardOwner

    def current_link(self) -> SshLink | None:
        link = self.link
        return link if link is not None and link.alive else None

    def client_opened(self, client: LocalClient) -> None:
        self._clients.add(client)

    def client_closed(self, client: LocalClient) -> None:
        self._clients.discard(client)

    def channel_failed(self, error: ChannelOpenFailed) -> None:
        self._channel_error = True
        if (self.last_error, self.hint) == (error.message, error.hint):
            return  # a client retrying in a loop must not flood subscribers
        self.last_error, self.hint = error.message, error.hint
        self._on_change(self)

    def channel_succeeded(self) -> None:
        """A forward opened: an earlier channel error (database down) is over."""
        if self._channel_error:
            self._channel_error = False
            self.last_error = self.hint = None
            self._on_change(self)

    def note_rtt(self, seconds: float) -> float:
        """A channel opened in `seconds`: the lowest on this link is its RTT estimate
        (the bastion's connect to the database adds to some opens)."""
        if self.rtt is None or seconds < self.rtt:
            self.rtt = seconds
        return self.rtt

    def window_grew(self, size: int) -> None:
        """A channel needed a bigger window: the next ones open with it."""
        self.window = min(max(self.window, size), self.max_window)

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> TunnelStatus:
        self._set_state(TunnelState.CONNECTING)
        listener = LocalListener(
            self.conn.local_host, self.conn.local_port or 0, lambda: LocalClient(self),
            name=self.conn.name, reuse_port=self._settings.reuse_port,
        )
        try:
            self.local_port = await listener.start()
            self._listener = listener
            link = await self._pool.acquire(self.conn, self.keys, accept_new=self._accept_new,
                                            accept_keys=self._accept_keys,
                                            key_comments=self.key_comments)
        except TunnelError as exc:
            await listener.close()
            self._listener = None
            if isinstance(exc, AgentKeyUnavailable):
                exc.hint = exc.hint_for(self.conn.name)
            self._set_state(TunnelState.FAILED, exc.message, exc.hint)
            raise
        except BaseException:
            await listener.close()
            self._listener = None
            self._set_state(TunnelState.FAILED, "could not start")
            raise
        self._attach(link)
        self._set_state(TunnelState.UP)
        return self.status()

    def _attach(self, link: SshLink) -> None:
        self.link = link
        self.rtt = None  # a new link may take another way
        self._unwatch = link.on_dead(self._link_dead)

    def _detach(self) -> SshLink | None:
        link, self.link = self.link, None
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        return link

    def _link_dead(self, link: SshLink, reason: str) -> None:
        if link is not self.link or self._stopping:
            return
        self._detach()
        self._set_state(
            TunnelState.RECONNECTING, reason,
            "the tunnel reconnects by itself; the local port stays the same",
        )
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        s = self._settings
        for attempt in range(1_000_000):  # bounded; in practice ends on success or failure
            await asyncio.sleep(backoff_delay(attempt, s.backoff_base, s.backoff_cap))
            if self._stopping:
                return
            try:
                link = await self._pool.acquire(self.conn, self.keys,
                                                key_comments=self.key_comments)
            except AgentKeyUnavailable as exc:
                # Only the user can bring their agent (or key) back: wait, don't loop.
                log.warning("%s: %s (waiting for `up` with an agent)", self.conn.name,
                            exc.message)
                await self._close_listener()
                self._set_state(
                    TunnelState.WAITING_FOR_SECRET, exc.message, exc.hint_for(self.conn.name)
                )
                return
            except HopError as exc:
                if exc.permanent:
                    log.error("%s: %s (permanent, not retrying)", self.conn.name, exc.message)
                    await self._close_listener()
                    self._set_state(
                        TunnelState.FAILED, f"{exc.message} (not retrying)", exc.hint
                    )
                    return
                self.last_error, self.hint = exc.message, exc.hint
                self._on_change(self)
                continue
            except TunnelError as exc:
                self.last_error, self.hint = exc.message, exc.hint
                self._on_change(self)
                continue
            except Exception as exc:  # an unexpected library error: keep trying, say why
                log.exception("%s: reconnect attempt failed", self.conn.name)
                self.last_error = f"reconnect failed: {type(exc).__name__}: {exc}"
                self._on_change(self)
                continue
            if self._stopping:
                self._pool.release(link)
                return
            self._attach(link)
            self.reconnects += 1
            self._set_state(TunnelState.UP)
            return

    async def switch_link(self, new_conn: Connection, keys: Mapping[str, ClientKey]) -> None:
        """Move to a new SSH link (new key): new clients use it at once; channels
        already open finish on the old link, which closes after the last one."""
        link = await self._pool.acquire(new_conn, keys, key_comments=self.key_comments)
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done():  # reconnecting: the new link ends that
            task.cancel()
        old = self._detach()
        self.conn = dataclasses.replace(new_conn, local_port=self.local_port)
        self.keys = dict(keys)
        self._attach(link)
        if old is not None:
            self._pool.release(old)
        if self.state is not TunnelState.UP:
            self._set_state(TunnelState.UP)
        else:
            self._on_change(self)

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def stop(self) -> None:
        self._stopping = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - already reported
                pass
        await self._close_listener()
        for client in list(self._clients):
            client.abort()
        self._clients.clear()
        link = self._detach()
        if link is not None:
            self._pool.release(link)
        self._set_state(TunnelState.DOWN, keep_error=True)

    @property
    def listening(self) -> list[tuple[str, int]]:
        return self._listener.sockets if self._listener is not None else []
