"""A user-space delay proxy: a long-haul link on loopback (this kernel has no netem).

`python -m bench.delay --delay-ms 25 --target PORT [--target PORT ...]` listens on a
free 127.0.0.1 port per target, prints one JSON line `{"ports": {target: listen}}`
and serves until stdin closes.

Each chunk read from one side is stamped with its arrival time and written to the
other side `delay` later (a timestamped queue, one timer for the head: chunks in
flight overlap, nothing is serialised behind a sleep), so one-way delay D gives an
RTT of 2D at full throughput. Like a TCP connection over a real link, at most
`--link-window` bytes per direction may be unacknowledged: a chunk's bytes count
until D after it was delivered (the ACK's way back), so a sender keeps at most that
window in flight per round trip. The default, 6 MiB, is Linux's default
`tcp_rmem` maximum: plain TCP then tops out at ~6 MiB per RTT (~126 MB/s at 50 ms),
what the issue measured between two hosts. A slow receiver also holds the sender
(what it has not read yet counts against the window, as in its socket buffer).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import socket
import sys
from typing import Any

HOST = "127.0.0.1"
LINK_WINDOW = 6 * 1024 * 1024


class _Direction:
    """One way of one connection: queue, delay, window."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, window: int) -> None:
        self.loop = loop
        self.delay = delay
        self.window = window
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.inflight = 0
        self.timer: asyncio.TimerHandle | None = None
        self.src: Any = None  # transport we read from
        self.dst: Any = None  # transport we write to
        self.dst_full = False
        self.src_paused = False

    def feed(self, data: bytes | None) -> None:
        """A chunk (None: EOF) arrived from src."""
        due = self.loop.time() + self.delay
        self.queue.append((due, data))
        if data:
            self.inflight += len(data)
        if self.timer is None:
            self.timer = self.loop.call_at(due, self._deliver)
        self._check_pause()

    def _check_pause(self) -> None:
        # Bytes on the way, plus bytes delivered that the receiver has not read yet:
        # a receiver's TCP window is the room left in its socket buffer.
        unread = self.dst.get_write_buffer_size() if self.dst is not None else 0
        should = self.inflight + unread >= self.window or self.dst_full
        if should != self.src_paused and self.src is not None and not self.src.is_closing():
            self.src_paused = should
            (self.src.pause_reading if should else self.src.resume_reading)()

    def _deliver(self) -> None:
        self.timer = None
        now = self.loop.time()
        out: list[bytes] = []
        eof = False
        while self.queue and self.queue[0][0] <= now + 0.0005:
            _, data = self.queue.popleft()
            if data is None:
                eof = True
                break
            out.append(data)
        if out and self.dst is not None and not self.dst.is_closing():
            chunk = out[0] if len(out) == 1 else b"".join(out)
            self.dst.write(chunk)
            self.loop.call_at(now + self.delay, self._acked, len(chunk))
        if eof and self.dst is not None and not self.dst.is_closing():
            if self.dst.can_write_eof():
                self.dst.write_eof()
            else:
                self.dst.close()
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._deliver)

    def _acked(self, nbytes: int) -> None:
        self.inflight -= nbytes
        self._check_pause()

    def dst_pause(self, full: bool) -> None:
        self.dst_full = full
        self._check_pause()


class _Side(asyncio.Protocol):
    def __init__(
        self, out: _Direction, back: _Direction, peer: _Side | None = None,
        on_made: Any = None,
    ) -> None:
        self.on_made = on_made  # the accepted side: connects to the target
        self.out = out  # what we read goes here
        self.back = back  # what we write comes from here
        self.peer = peer
        self.transport: Any = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A receiver on a long link has a socket buffer as big as the window (TCP
        # autotuning); loopback's would be small and stall the link on every hiccup
        # of the receiving process. So what it has not read yet waits here, counted
        # against the window (_check_pause).
        window = self.back.window
        transport.set_write_buffer_limits(high=window, low=window // 4)  # type: ignore[attr-defined]
        self.out.src = transport
        self.back.dst = transport
        if self.on_made is not None:
            transport.pause_reading()  # type: ignore[attr-defined]
            asyncio.get_running_loop().create_task(self.on_made(self))

    def data_received(self, data: bytes) -> None:
        self.out.feed(bytes(data))

    def eof_received(self) -> bool:
        self.out.feed(None)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            # Let what is queued arrive, then close (a reset stays a close here).
            delay = self.out.delay + 0.001
            self.out.loop.call_later(delay, peer.transport.close)

    def pause_writing(self) -> None:
        self.back.dst_pause(True)

    def resume_writing(self) -> None:
        self.back.dst_pause(False)


async def serve(target: int, delay: float, window: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    async def connect(client: _Side) -> None:
        try:
            _, server_side = await loop.create_connection(
                lambda: _Side(client.back, client.out, client), HOST, target
            )
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        client.peer = server_side  # type: ignore[assignment]
        if client.closed:
            server_side.transport.close()  # type: ignore[attr-defined]
        else:
            client.transport.resume_reading()  # held until the target side was there

    def accept() -> asyncio.Protocol:
        up = _Direction(loop, delay, window)  # client -> target
        down = _Direction(loop, delay, window)  # target -> client
        return _Side(up, down, on_made=connect)

    return await loop.create_server(accept, HOST, 0, backlog=512)


async def _main(targets: list[int], delay_ms: float, window: int) -> None:
    servers = {t: await serve(t, delay_ms / 1000, window) for t in targets}
    ports = {str(t): s.sockets[0].getsockname()[1] for t, s in servers.items()}
    print(json.dumps({"ports": ports}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers.values():
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delay", description=__doc__)
    parser.add_argument("--delay-ms", type=float, required=True, help="one way")
    parser.add_argument("--target", type=int, action="append", required=True)
    parser.add_argument("--link-window", type=int, default=LINK_WINDOW)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the bench works without it, a little slower
        pass
    asyncio.run(_main(args.target, args.delay_ms, args.link_window))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
