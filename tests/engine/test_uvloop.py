"""The same engine under uvloop (the agent's and the CLI's loop): its transports are
not asyncio classes, so the data path, resets and QUICKACK must work there too."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os

import pytest

from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState
from tunnel_tui.engine import TunnelEngine

uvloop = pytest.importorskip("uvloop")


@pytest.mark.parametrize(
    "writes", [{}, {"coalesce_writes": True}, {"cork_writes": False}, {"hold_reads": False}],
    ids=["default-corked", "coalesced-writes", "plain-writes", "reads-not-held"],
)
def test_engine_under_uvloop(sshd, client_keypair, engine_known_hosts, echo_server,
                             free_tcp_port, writes):
    sshd.authorize(client_keypair.public_line)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    keys = {"k-test": Secret(client_keypair.private_pem)}

    async def main() -> None:
        engine = TunnelEngine(engine_known_hosts,
                              dataclasses.replace(FAST, **writes))
        try:
            good = await engine.start(
                make_conn("u", [(sshd.host, sshd.port, sshd.user)],
                          ("127.0.0.1", echo_server.port)), keys)
            bad = await engine.start(
                make_conn("closed", [(sshd.host, sshd.port, sshd.user)],
                          ("127.0.0.1", free_tcp_port)), keys)
            payload = os.urandom(8 * 1024 * 1024)
            reader, writer = await asyncio.open_connection("127.0.0.1", good.local_port)

            async def send() -> None:
                writer.write(payload)
                await writer.drain()

            async def receive() -> bytes:
                return await reader.readexactly(len(payload))

            _, echoed = await asyncio.wait_for(asyncio.gather(send(), receive()), 30)
            writer.close()
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
            # A failing forward resets its client quickly under uvloop too.
            r2, w2 = await asyncio.open_connection("127.0.0.1", bad.local_port)
            try:
                assert await asyncio.wait_for(r2.read(10), 3) == b""
            except ConnectionResetError:
                pass
            w2.close()
            await wait_until_async(lambda: engine.status("closed").last_error, 3, "cause recorded")
            assert "connection refused" in engine.status("closed").last_error
            assert engine.status("u").state is TunnelState.UP
        finally:
            await engine.aclose()

    uvloop.run(main())
