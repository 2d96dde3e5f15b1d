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


async def test_server_data_then_close_arrives_whole_before_eof(
    sshd, client_keypair, engine_known_hosts
) -> None:
    """Data held for one SSH read is sent before the EOF and the close that follow it
    in the same read: a result set followed by the server closing is never cut."""
    import dataclasses
    import hashlib
    import os

    from tests.fixtures.engine import FAST, make_conn, trust
    from tunnel_tui.core.secret import Secret
    from tunnel_tui.engine import TunnelEngine

    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def speak_and_close(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(payload)
        await w.drain()
        w.close()

    server = await asyncio.start_server(speak_and_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sshd.authorize(client_keypair.public_line)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    keys = {"k-test": Secret(client_keypair.private_pem)}
    try:
        async with TunnelEngine(engine_known_hosts, dataclasses.replace(FAST)) as engine:
            status = await engine.start(
                make_conn("s", [(sshd.host, sshd.port, sshd.user)], ("127.0.0.1", port)), keys
            )
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", status.local_port)
                got = await asyncio.wait_for(reader.read(), 20)  # until EOF
                writer.close()
                assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    finally:
        server.close()
