"""SO_REUSEPORT on the local listener (EngineSettings.reuse_port, for worker
processes): two listeners with it share a port, and a connection reaches one of
them; without it the second one gets the clear port-in-use error, as before."""

from __future__ import annotations

import asyncio

import pytest

from tunnel_tui.engine import LocalPortInUse
from tunnel_tui.engine.listener import LocalListener


class _Greeter(asyncio.Protocol):
    def __init__(self, word: bytes) -> None:
        self.word = word

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.word)  # type: ignore[attr-defined]
        transport.close()


async def test_two_listeners_share_a_port_with_reuse_port() -> None:
    first = LocalListener("127.0.0.1", 0, lambda: _Greeter(b"a"), reuse_port=True)
    port = await first.start()
    second = LocalListener("127.0.0.1", port, lambda: _Greeter(b"b"), reuse_port=True)
    try:
        assert await second.start() == port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(1), 5) in (b"a", b"b")
        writer.close()
    finally:
        await second.close()
        await first.close()


async def test_without_reuse_port_the_port_is_in_use() -> None:
    first = LocalListener("127.0.0.1", 0, lambda: _Greeter(b"a"))
    port = await first.start()
    try:
        with pytest.raises(LocalPortInUse):
            await LocalListener("127.0.0.1", port, lambda: _Greeter(b"b")).start()
    finally:
        await first.close()
