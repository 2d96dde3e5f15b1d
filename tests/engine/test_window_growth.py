"""A channel's receive window follows the link's bandwidth-delay product (forward.py).

Over a delayed link (the benchmark's delay proxy, 30 ms each way, in front of the
in-process bastion) a download through a tunnel whose window starts at 1 MiB grows
the window, never past `max_window`, delivers every byte, and the tunnel's next
channels open with the grown window.
"""

from __future__ import annotations

import asyncio
import dataclasses

from bench.delay import serve as delay_proxy
from tests.fixtures.engine import FAST, make_conn, trust
from tunnel_tui.core.secret import Secret
from tunnel_tui.engine import TunnelEngine

SIZE = 24 * 1024 * 1024
START, BOUND = 1024 * 1024, 8 * 1024 * 1024


async def _source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends SIZE bytes once asked (one byte), then closes."""
    await reader.readexactly(1)
    chunk = bytes(range(256)) * 256  # 64 KiB
    for _ in range(SIZE // len(chunk)):
        writer.write(chunk)
        await writer.drain()
    writer.close()


async def _download(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"g")
    await writer.drain()
    got = 0
    while True:
        data = await asyncio.wait_for(reader.read(1 << 20), 20)
        if not data:
            break
        got += len(data)
    writer.close()
    return got


async def test_window_grows_with_the_link_and_stays_bounded(
    asyncssh_bastion, engine_known_hosts
) -> None:
    source = await asyncio.start_server(_source, "127.0.0.1", 0)
    proxy = await delay_proxy(asyncssh_bastion.port, 0.030, 64 * 1024 * 1024)
    proxy_port = proxy.sockets[0].getsockname()[1]
    trust(engine_known_hosts, "127.0.0.1", proxy_port, asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    conn = make_conn("far", [("127.0.0.1", proxy_port, asyncssh_bastion.user)],
                     ("127.0.0.1", source.sockets[0].getsockname()[1]))
    settings = dataclasses.replace(FAST, window=START, max_window=BOUND)
    engine = TunnelEngine(engine_known_hosts, settings)
    try:
        status = await engine.start(conn, keys)
        assert await _download(status.local_port) == SIZE
        tunnel = engine.tunnel("far")
        assert START < tunnel.window <= BOUND  # grown with rate x RTT, within the bound
    finally:
        await engine.aclose()
        proxy.close()
        source.close()
