"""Data through a real OpenSSH bastion (issue 10 items 8, 9): many concurrent clients
intact and no leak, clients leaving while their channel is opening, 64 MiB with a
checksum and half-close."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.netns import stop_process
from tests.fixtures.waiting import wait_until_async
from tests.reliability.helpers import open_fds
from tunnel_tui.core.model import Keepalive
from tunnel_tui.core.secret import Secret
from tunnel_tui.engine import TunnelEngine

QUIET = Keepalive(30, 3)  # long: freezes in these tests must not trigger a reconnect


def _established_to(port: int) -> int:
    """ESTABLISHED TCP connections whose local port is `port` (the echo server's side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                count += 1
    return count


ECHO = """
import asyncio, sys

async def handle(reader, writer):
    try:
        while data := await reader.read(262144):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    except OSError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class EchoProcess:
    """An echo server in its own process: the 200-client test moves 1.6 GB, and a
    server thread would compete with the engine for this process's GIL."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def close(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def echo_process():
    echo = EchoProcess()
    try:
        yield echo
    finally:
        echo.close()


@pytest.fixture
async def fast_tunnel(sshd_factory, client_keypair, engine_known_hosts, echo_process):
    server = sshd_factory()
    server.authorize(client_keypair.public_line)
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    conn = make_conn("data", [(server.host, server.port, server.user)],
                     (echo_process.host, echo_process.port), keepalive=QUIET)
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        status = await engine.start(conn, {"k-test": Secret(client_keypair.private_pem)})
        yield engine, status.local_port, server, echo_process


@pytest.fixture
async def tunnel(sshd_factory, client_keypair, engine_known_hosts, echo_server):
    server = sshd_factory()
    server.authorize(client_keypair.public_line)
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    conn = make_conn("data", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=QUIET)
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        status = await engine.start(conn, {"k-test": Secret(client_keypair.private_pem)})
        yield engine, status.local_port, server, echo_server


async def _round_trip(port: int, size: int, seed: int) -> bool:
    payload = hashlib.shake_256(seed.to_bytes(4, "big")).digest(4096) * (size // 4096)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()  # half-close: the echo server answers, then closes

        sender = asyncio.ensure_future(send())
        received = await asyncio.wait_for(reader.read(-1), 120)  # until EOF
        await sender
        return hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    finally:
        writer.close()


@pytest.mark.slow
async def test_200_concurrent_clients_4mib_each_intact_and_back_to_baseline(fast_tunnel):
    engine, port, server, echo = fast_tunnel
    assert await _round_trip(port, 4096, 0)  # warm up: lazy imports, buffers
    fds = open_fds(os.getpid())
    results = await asyncio.gather(*(_round_trip(port, 4 << 20, i) for i in range(200)))
    assert results == [True] * 200
    await wait_until_async(lambda: engine.status("data").channels == 0, 10, "channels released")
    await wait_until_async(
        lambda: _established_to(echo.port) == 0, 10, "bastion-side sockets closed"
    )
    await wait_until_async(lambda: open_fds(os.getpid()) <= fds, 10, "fds back to baseline")
    status = engine.status("data")
    assert status.bytes_out >= 200 * (4 << 20) and status.bytes_in >= 200 * (4 << 20)
    assert len(server.connection_pids()) == 1  # still one SSH connection


async def test_64_mib_round_trip_checksum_and_half_close(tunnel):
    engine, port, _, _ = tunnel
    assert await _round_trip(port, 64 << 20, 7)
    await wait_until_async(lambda: engine.status("data").channels == 0, 10, "channel released")


async def test_clients_leaving_while_their_channel_opens_leak_nothing(tunnel):
    engine, port, server, echo = tunnel
    assert await _round_trip(port, 4096, 1)
    await wait_until_async(lambda: _established_to(echo.port) == 0, 10, "warm-up closed")
    fds = open_fds(os.getpid())
    accepted_before = echo.connections
    sessions = server.session_pids()
    bastion = engine.tunnel("data").link.bastion
    opening = len(bastion._channels)  # noqa: SLF001 (asyncssh's table of open/opening channels)
    for pid in sessions:  # the bastion cannot answer channel opens while frozen
        os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(1, 31):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await wait_until_async(
                lambda i=i: len(bastion._channels) >= opening + i,  # noqa: SLF001
                5,
                "the engine accepting and sending the channel open",
            )
            writer.transport.abort()
    finally:
        for pid in sessions:
            os.kill(pid, signal.SIGCONT)
    # The bastion now opens each channel (and connects to the echo server) for a client
    # that is gone: the engine must close every one of them.
    await wait_until_async(lambda: echo.connections - accepted_before >= 1, 10,
                           "the bastion opening the late channels")
    await wait_until_async(lambda: _established_to(echo.port) == 0, 10,
                           "late channels closed at the bastion")
    await wait_until_async(lambda: engine.status("data").channels == 0, 10, "no channel counted")
    await wait_until_async(lambda: open_fds(os.getpid()) <= fds, 10, "fds back to baseline")
    assert await _round_trip(port, 65536, 2)  # and the tunnel still works


async def test_a_client_closing_before_its_answer_arrives_does_not_drop_the_ssh_link(tunnel):
    engine, port, server, _ = tunnel
    sessions = server.connection_pids()
    refused = 0
    for _ in range(20):
        # A request, then gone without reading the answer (health checks, killed clients):
        # the answer and the EOF reach a socket that is already reset.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"request")
            await writer.drain()
        except ConnectionResetError:  # the tunnel reset us: its SSH link is gone
            refused += 1
        writer.close()
        await asyncio.sleep(0.02)  # pacing: the answer mostly reaches the reset socket
    assert refused == 0, f"{refused} of 20 clients reset: {engine.status('data').last_error}"
    await wait_until_async(lambda: engine.status("data").channels == 0, 10, "channels released")
    status = engine.status("data")
    assert status.state.value == "up" and status.reconnects == 0, status.last_error
    assert server.connection_pids() == sessions
    assert await _round_trip(port, 4096, 3)
