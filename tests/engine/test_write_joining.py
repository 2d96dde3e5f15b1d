"""The SSH socket's write joiner: asyncssh writes an SSH_MSG_IGNORE and then the
packet, separately, for every packet; the engine joins the writes one callback makes
into one send(), and sends writes made outside any callback at once."""

from __future__ import annotations

import asyncio

from tunnel_tui.engine.transport import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_corked_writes_leave_as_one_send_in_order() -> None:
    sock = RecordingTransport()
    writer = CoalescingTransport(sock)
    writer.cork()
    writer.cork()  # nested: a jump host's channel inside the first hop's read
    writer.write(b"ignore1")
    writer.write(b"packet1")
    writer.uncork()
    assert sock.sends == []  # still inside the outer callback
    writer.write(b"packet2")
    writer.uncork()
    assert sock.sends == [b"ignore1packet1packet2"]
    writer.write(b"keepalive")  # outside any callback: no waiting for a flush
    assert sock.sends[-1] == b"keepalive"


async def test_close_sends_what_is_held_first() -> None:
    sock = RecordingTransport()
    writer = CoalescingTransport(sock)
    writer.cork()
    writer.write(b"disconnect")
    writer.close()
    assert sock.sends == [b"disconnect"] and sock.closed


async def test_per_iteration_mode_waits_for_the_loop() -> None:
    sock = RecordingTransport()
    writer = CoalescingTransport(sock, per_iteration=True)
    writer.write(b"a")
    writer.cork()
    writer.write(b"b")
    writer.uncork()
    assert sock.sends == []
    await asyncio.sleep(0)
    assert sock.sends == [b"ab"]
