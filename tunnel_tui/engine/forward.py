"""One forwarded client: a local TCP connection piped to a direct-tcpip channel.

Protocol-level (no streams, no per-packet tasks): bytes go straight from one
transport to the other, with flow control mapped both ways (a full local socket
pauses the channel, a full channel window pauses the local socket).

Each channel's receive window follows its bandwidth-delay product: it opens at the
tunnel's window (EngineSettings.window, or larger once a channel of the tunnel
grew), its round-trip time is the time its CHANNEL_OPEN took (the lowest such time
on the link), and while data arrives the window is raised to WINDOW_FACTOR x rate x
RTT, never above `max_window` (the most one channel can make us buffer when its
local client stops reading). On a LAN the product is tiny and the window stays
where it opened.

A channel that cannot be opened keeps its cause (code 1: policy, code 2: the bastion
could not reach the target, with its reason text) for the tunnel's state and log,
and the local client's socket is reset at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from typing import Any, Protocol, cast

import asyncssh

from tunnel_tui.engine.asyncssh_shims import grow_window
from tunnel_tui.engine.errors import (
    POLICY_HINT,
    ChannelOpenFailed,
    ForwardingProhibited,
    TargetUnreachable,
)

log = logging.getLogger(__name__)

_OPEN_ADMINISTRATIVELY_PROHIBITED = 1
_OPEN_CONNECT_FAILED = 2
_CORK_MIN = 8192  # bytes from a local client worth joining into one send()
_CONNECTION_CLOSED = "SSH connection closed"  # asyncssh's reason when the link is gone
# Window wanted per (rate x RTT). asyncssh tops a window up once half of it is used,
# and the top-up takes half an RTT to reach the sender: W/2 >= 1.5 x rate x RTT keeps
# the sender from waiting, so 3x; 4x leaves room for a rate still growing.
WINDOW_FACTOR = 4


class Counters:
    """Live counters of one tunnel, read by the coalescing publisher."""

    __slots__ = ("bytes_in", "bytes_out", "channels")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.channels = 0


class ForwardOwner(Protocol):
    """What a forwarded client needs from its tunnel."""

    target_host: str
    target_port: int
    counters: Counters
    window: int
    max_pktsize: int
    # Optional: `max_window` (int), `window_grew(size)` and `note_rtt(seconds) ->
    # seconds` (the lowest channel-open time seen on the link, so one slow database
    # connect does not inflate the RTT); without them a channel's window never grows
    # past `window` (validation's temporary forward).

    def current_link(self) -> Any: ...  # engine.pool.SshLink | None

    def client_opened(self, client: LocalClient) -> None: ...

    def client_closed(self, client: LocalClient) -> None: ...

    def channel_failed(self, error: ChannelOpenFailed) -> None: ...

    def channel_succeeded(self) -> None: ...


def channel_error(exc: asyncssh.ChannelOpenError, host: str, port: int) -> ChannelOpenFailed:
    """The typed error for a failed direct-tcpip open, keeping the bastion's reason."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = (exc.reason or "").strip()
    if exc.code == _OPEN_ADMINISTRATIVELY_PROHIBITED:
        return ForwardingProhibited(
            f"the bastion refused to forward to {target} (its policy forbids it: "
            "AllowTcpForwarding, PermitOpen or a restrict key option)",
            code=exc.code, reason=reason, hint=POLICY_HINT,
        )
    if exc.code == _OPEN_CONNECT_FAILED:
        text = reason.lower() or "connection failed"
        if "name or service" in text or "not known" in text or "resolution" in text:
            hint = (
                f"the bastion cannot resolve {host}: use the name or address the bastion "
                "itself uses for the database"
            )
        else:
            hint = (
                f"check that the database listens on {target} as seen from the bastion "
                "(is it running? a firewall between bastion and database?)"
            )
        return TargetUnreachable(
            f"the bastion could not reach {target}: {text}",
            code=exc.code, reason=reason, hint=hint,
        )
    return ChannelOpenFailed(
        f"the bastion did not open a channel to {target}: {reason or 'unknown reason'}",
        code=exc.code, reason=reason,
        hint="the SSH connection may have closed; the tunnel reconnects by itself",
    )


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with RST: the client sees 'connection reset' at once, not a hang or a
    clean EOF that a database driver would report as a server-side close."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]


class _ChannelSide(asyncssh.SSHTCPSession[bytes]):
    """The SSH end. Nothing raised here may reach asyncssh: an exception in a session
    callback tears down the whole shared SSH connection. A local socket the client
    already reset (ENOTCONN, EPIPE) just ends this one forward."""

    def __init__(self, client: LocalClient) -> None:
        self._client = client

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        client = self._client
        size = len(data)
        client.counters.bytes_in += size
        client.win_bytes += size
        if client.win_bytes >= client.win_check:
            client.tune_window()
        held = client.held
        if held is not None:  # more data of the same SSH read
            held.append(data)
            return
        writer = client.writer
        if writer is not None and writer.corked and client.hold_reads:
            # Inside one SSH socket read: the packets for this client leave in one
            # send() when the read is done (transport.CoalescingTransport).
            client.held = [data]
            writer.after_uncork(client.flush_held)
            return
        client.send_local(data)

    def eof_received(self) -> bool:
        self._client.flush_held()
        transport = self._client.transport
        if transport is not None and transport.can_write_eof() and not transport.is_closing():
            try:
                transport.write_eof()
            except OSError:
                self._client.local_broken()
        return True  # keep the channel: the client may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._client.flush_held()
            self._client.channel_closed()
        except Exception:  # never into asyncssh (see the class docstring)
            log.exception("closing a forwarded client failed")

    def pause_writing(self) -> None:
        transport = self._client.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        transport = self._client.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


class LocalClient(asyncio.Protocol):
    """The local end; opens its channel when accepted."""

    def __init__(self, owner: ForwardOwner) -> None:
        self._owner = owner
        self.counters = owner.counters
        self.transport: asyncio.Transport | None = None
        self.channel: asyncssh.SSHTCPChannel[bytes] | None = None
        self.link: Any = None
        self._local_closed = False
        self._counted = False
        self._task: asyncio.Task[None] | None = None
        # Data (and EOF) that arrived before the channel was open: uvloop may deliver
        # reads even though we paused reading in connection_made.
        self._early: list[bytes] = []
        self._early_eof = False
        self.writer: Any = None  # the SSH socket's write joiner (see transport.py)
        self.held: list[bytes] | None = None  # SSH data held until the read is done
        self.hold_reads: bool = getattr(owner, "hold_reads", True)
        # Receive window tuning (module docstring): bytes and time since the last look.
        self.window = owner.window
        self.max_window = max(owner.window, getattr(owner, "max_window", owner.window))
        self.rtt = 0.0  # seconds the channel took to open
        self.win_bytes = 0
        self.win_check = 1 << 62  # until the channel is open
        self.win_t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, same interface.
        self.transport = cast(asyncio.Transport, transport)
        link = self._owner.current_link()
        if link is None:  # reconnecting or stopping: refuse quickly, never hang
            self._local_closed = True
            reset(transport)
            return
        self.link = link
        self.transport.pause_reading()  # until the channel is open
        self._owner.client_opened(self)
        self._task = asyncio.get_running_loop().create_task(self._open(link))

    async def _open(self, link: Any) -> None:
        owner = self._owner
        self.window = owner.window
        started = time.monotonic()
        try:
            channel, _ = await link.bastion.create_connection(
                lambda: _ChannelSide(self), owner.target_host, owner.target_port,
                window=self.window, max_pktsize=owner.max_pktsize,
            )
        except asyncssh.ChannelOpenError as exc:
            if exc.reason == _CONNECTION_CLOSED:
                # The SSH link died under us: the tunnel reports that (reconnecting);
                # this is no verdict on the target.
                self._drop()
                return
            error = channel_error(exc, owner.target_host, owner.target_port)
            log.warning("forward failed: %s", error.message)
            owner.channel_failed(error)
            self._drop()
            return
        except (OSError, asyncssh.Error) as exc:
            log.warning("forward failed: %s", exc)
            self._drop()
            return
        if self._local_closed:  # the client left while the channel was opening
            channel.close()
            return
        self.channel = channel
        self.win_t0 = time.monotonic()
        note_rtt = getattr(owner, "note_rtt", None)  # the tunnel's lowest, if it keeps one
        rtt = self.win_t0 - started
        self.rtt = note_rtt(rtt) if note_rtt is not None else rtt
        self.win_check = self.win_bytes + self.window // 4
        self.writer = getattr(link, "writer", None)
        self._counted = True
        self.counters.channels += 1
        link.channel_opened()
        owner.channel_succeeded()
        if self._early:
            channel.write(b"".join(self._early))
            self._early.clear()
        if self._early_eof:
            channel.write_eof()
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def tune_window(self) -> None:
        """Every quarter window of data: raise the window to WINDOW_FACTOR x rate x
        RTT (bounded by max_window) when that is more than it has."""
        now = time.monotonic()
        elapsed = now - self.win_t0
        if elapsed <= 0 or elapsed < self.rtt:  # a burst, not a rate yet: look later
            self.win_check = self.win_bytes + max(1, self.window // 8)
            return
        need = int(WINDOW_FACTOR * self.win_bytes / elapsed * self.rtt)
        if need > self.window and self.window < self.max_window:
            size = min(self.max_window, need)
            if self.channel is not None and grow_window(self.channel, size):
                self.window = size
                grew = getattr(self._owner, "window_grew", None)
                if grew is not None:
                    grew(size)
        self.win_bytes = 0
        self.win_t0 = now
        self.win_check = self.window // 4

    def send_local(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            try:
                transport.write(data)
            except OSError:
                self.local_broken()

    def flush_held(self) -> None:
        held, self.held = self.held, None
        if held:
            self.send_local(held[0] if len(held) == 1 else b"".join(held))

    def _drop(self) -> None:
        if self.transport is not None and not self._local_closed:
            self._local_closed = True
            reset(self.transport)
        self._owner.client_closed(self)

    def data_received(self, data: bytes) -> None:
        self.counters.bytes_out += len(data)
        channel = self.channel
        if channel is not None:
            # Large writes: the IGNORE + data packet pairs (one per max_pktsize) leave
            # in one send(). Small ones (queries) go plain: there the cork costs more
            # Python than the send() it saves (docs/PERF-WORK.md, R6).
            writer = self.writer if len(data) >= _CORK_MIN else None
            if writer is not None:
                writer.cork()
            try:
                channel.write(data)
            except (BrokenPipeError, OSError):  # the channel closed under us
                self.local_broken()
            finally:
                if writer is not None:
                    writer.uncork()
        else:
            self._early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.channel is not None:
            try:
                self.channel.write_eof()
            except (BrokenPipeError, OSError):
                self.local_broken()
        else:
            self._early_eof = True
        return True  # half-close: answers may still flow back

    def connection_lost(self, exc: Exception | None) -> None:
        self._local_closed = True
        if self.channel is not None:
            self.channel.close()
        elif self._task is None or self._task.done():
            self._owner.client_closed(self)
        # else: _open finishes, sees _local_closed and closes the channel it got

    def pause_writing(self) -> None:
        if self.channel is not None:
            self.channel.pause_reading()

    def resume_writing(self) -> None:
        if self.channel is not None:
            self.channel.resume_reading()

    def channel_closed(self) -> None:
        """The SSH channel ended (either side): finish the local side too."""
        if self._counted:
            self._counted = False
            self.counters.channels -= 1
            if self.link is not None:
                self.link.channel_closed()
        self.channel = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._owner.client_closed(self)

    def local_broken(self) -> None:
        """The local socket (or the channel) can no longer carry data: end both."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        if self.channel is not None:
            self.channel.close()

    def abort(self) -> None:
        """Stop now (tunnel stopped): reset the client, close the channel."""
        self._local_closed = True
        if self.channel is not None:
            self.channel.close()
        if self.transport is not None and not self.transport.is_closing():
            reset(self.transport)
