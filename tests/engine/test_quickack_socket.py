"""Under uvloop the engine re-arms TCP_QUICKACK through its own duplicate of the SSH
socket's descriptor (uvloop's PseudoSocket builds a Python socket per setsockopt):
the duplicate is closed with the connection, so no descriptor is left open and the
bastion sees the connection end."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.secret import Secret
from tunnel_tui.engine import TunnelEngine

uvloop = pytest.importorskip("uvloop")


def _open_fds() -> int:
    """Socket descriptors of this process."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return count


def test_quickack_duplicate_closes_with_the_link(asyncssh_bastion, echo_server, engine_known_hosts):
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    conn = make_conn("q", [(asyncssh_bastion.host, asyncssh_bastion.port, asyncssh_bastion.user)],
                     ("127.0.0.1", echo_server.port))

    async def main() -> None:
        before = _open_fds()
        engine = TunnelEngine(engine_known_hosts, FAST)
        try:
            status = await engine.start(conn, keys)
            reader, writer = await asyncio.open_connection("127.0.0.1", status.local_port)
            for _ in range(20):  # many SSH reads, each re-arming QUICKACK
                writer.write(b"ping")
                assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
            writer.close()
            await writer.wait_closed()
            assert asyncssh_bastion.connection_count == 1
        finally:
            await engine.aclose()
        await wait_until_async(lambda: asyncssh_bastion.connection_count == 0, 5,
                               "the bastion saw the SSH connection end")
        await wait_until_async(lambda: _open_fds() <= before, 5, "socket descriptors closed")

    uvloop.run(main())
