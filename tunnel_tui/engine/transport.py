"""The TCP socket under the first SSH hop, opened by us instead of asyncssh.

Passed to asyncssh as a `tunnel=` object (public API). Why: OpenSSH's sshd sets no
TCP_NODELAY on a forwarding-only session, so Nagle holds its replies until we ACK,
and Linux delays that ACK ~40 ms. Setting TCP_QUICKACK after every read (the kernel
clears it again by itself) removes the stall on each new forwarded connection
(PERF.md: 0 stalls in 160 runs). TCP_NODELAY is set on our side too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, cast

log = logging.getLogger(__name__)

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class CoalescingTransport:
    """Joins asyncssh's per-packet writes into fewer send() calls.

    asyncssh writes every SSH packet on its own, and an SSH_MSG_IGNORE packet before
    each one: two send() calls per packet. Two ways to join them:

    - corking (default): writes made while a callback holds the cork (an SSH socket
      read being processed, a local client's data being sent) are joined and sent
      when it ends, in the same call: no extra loop iteration, no added latency;
      writes made outside a cork go straight to the socket.
    - per loop iteration (`per_iteration`): every write waits for the next
      iteration (PERF.md: -12 % CPU per transaction at c8, a small cost at c1).
    """

    def __init__(self, transport: Any, *, per_iteration: bool = False) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._buffer: list[bytes] = []
        self._scheduled = False
        self._per_iteration = per_iteration
        self._corks = 0
        self._after: list[Callable[[], None]] = []  # run when the outermost cork ends

    def write(self, data: bytes) -> None:
        if self._per_iteration:
            self._buffer.append(bytes(data))
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._flush)
        elif self._corks:
            self._buffer.append(bytes(data))
        else:
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def cork(self) -> None:
        self._corks += 1

    @property
    def corked(self) -> bool:
        return self._corks > 0

    def after_uncork(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the current (outermost) cork ends: forwards hold the
        data of one SSH read for a local socket and send it with one send()."""
        self._after.append(callback)

    def uncork(self) -> None:
        self._corks -= 1
        if self._corks:
            return
        after = self._after
        if after:
            self._after = []
            for callback in after:
                try:
                    callback()
                except Exception:  # never into the event loop: it would drop the socket
                    log.exception("sending held data failed")
        if not self._per_iteration:
            self._flush()

    def _flush(self) -> None:
        self._scheduled = False
        buffer = self._buffer
        if buffer:
            data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
            buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + sum(map(len, self._buffer))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _option_socket(transport_sock: Any) -> Any:
    """A socket object to set options on after every read. uvloop hands out a
    PseudoSocket whose setsockopt builds and detaches a Python socket per call
    (5.5 µs against 0.8 µs here, once per SSH read); a duplicate of the descriptor
    takes the options for the same connection at C cost. It is closed in
    connection_lost, after the transport closed its own (the connection ends when
    the last descriptor does)."""
    if type(transport_sock).__name__ != "PseudoSocket":
        return transport_sock  # asyncio's TransportSocket passes setsockopt straight on
    try:
        return socket.socket(fileno=os.dup(transport_sock.fileno()))
    except (OSError, AttributeError, ValueError):
        return transport_sock


class _QuickAckProtocol(asyncio.Protocol):
    """Passes every event to asyncssh's protocol, re-arming QUICKACK after each read
    (when asked) and joining the writes it makes while handling a read."""

    def __init__(
        self, inner: Any, *, quickack: bool = True, coalesce: bool = False, cork: bool = False
    ) -> None:
        self._inner = inner
        self._quickack = quickack and _QUICKACK is not None
        self._coalesce = coalesce
        self._cork = cork or coalesce
        self._sock: Any = None
        self.writer: CoalescingTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._quickack:
            self._sock = _option_socket(transport.get_extra_info("socket"))
        if self._cork:
            self.writer = CoalescingTransport(transport, per_iteration=self._coalesce)
            self._inner.connection_made(self.writer)
        else:
            self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        writer = self.writer
        if writer is not None:
            writer.cork()
            try:
                self._inner.data_received(data)
            finally:
                writer.uncork()
        else:
            self._inner.data_received(data)
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._drop_sock()

    def _drop_sock(self) -> None:
        sock, self._sock = self._sock, None
        if isinstance(sock, socket.socket):
            sock.close()  # our duplicate only; the transport's own fd is untouched

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._drop_sock()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


async def open_tcp(host: str, port: int, timeout: float) -> socket.socket:
    """Connect a non-blocking TCP socket (every address getaddrinfo gives, in order)."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
    )
    last: OSError | None = None
    for family, type_, proto, _, addr in infos:
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
        except (TimeoutError, OSError) as exc:
            sock.close()
            last = exc if not isinstance(exc, TimeoutError) else TimeoutError(
                f"timed out after {timeout:g} s"
            )
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise last or OSError(f"no address for {host}")


class DirectTcp:
    """asyncssh `tunnel=` object for the first hop: our own socket, NODELAY + QUICKACK
    (+ optional write coalescing).

    `sock` may be a socket already connected (validation times the TCP step itself).
    """

    def __init__(
        self, *, timeout: float = 15.0, quickack: bool = True, coalesce: bool = False,
        cork: bool = False, sock: socket.socket | None = None,
    ) -> None:
        self._timeout = timeout
        self._quickack = quickack
        self._coalesce = coalesce
        self._cork = cork
        self._sock = sock
        self._protocol: _QuickAckProtocol | None = None

    @property
    def writer(self) -> CoalescingTransport | None:
        """The socket's write joiner once connected (None when not corking)."""
        return self._protocol.writer if self._protocol is not None else None

    async def create_connection(
        self, protocol_factory: Callable[[], Any], host: str, port: int
    ) -> tuple[asyncio.BaseTransport, Any]:
        sock, self._sock = self._sock, None
        if sock is None:
            sock = await open_tcp(host, port, self._timeout)
        loop = asyncio.get_running_loop()
        inner = None

        def factory() -> asyncio.Protocol:
            nonlocal inner
            inner = protocol_factory()
            if not (self._quickack or self._coalesce or self._cork):
                return cast(asyncio.Protocol, inner)
            self._protocol = _QuickAckProtocol(
                inner, quickack=self._quickack, coalesce=self._coalesce, cork=self._cork
            )
            return self._protocol

        try:
            transport, _ = await loop.create_connection(factory, sock=sock)
        except BaseException:
            sock.close()
            raise
        return transport, inner

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
