"""After a burst of traffic the engine hands freed heap memory back to the OS once,
when the tunnels go quiet (an agent that carried gigabytes otherwise keeps ~15 MiB
more RSS); never while data is moving, never when nothing moved."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys

import pytest

from tests.fixtures.echo import echo_through
from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.secret import Secret
from tunnel_tui.engine import TunnelEngine, memory, service


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_memory_reaches_glibc() -> None:
    assert memory.release_free_memory() is True


async def test_trim_once_when_quiet_after_a_burst(
    asyncssh_bastion, echo_server, engine_known_hosts, monkeypatch
):
    calls: list[float] = []
    real = memory.release_free_memory

    def spy() -> bool:
        calls.append(asyncio.get_running_loop().time())
        return real()

    monkeypatch.setattr(service, "release_free_memory", spy)
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    settings = dataclasses.replace(FAST, trim_after_bytes=1 << 20)
    async with TunnelEngine(engine_known_hosts, settings) as engine:
        status = await engine.start(
            make_conn("t", [(asyncssh_bastion.host, asyncssh_bastion.port,
                             asyncssh_bastion.user)], ("127.0.0.1", echo_server.port)),
            keys,
        )
        await asyncio.sleep(settings.stats_interval * 4)
        assert calls == []  # nothing moved yet
        payload = os.urandom(2 << 20)
        assert await echo_through(status.local_port, payload, timeout=20) == payload
        await wait_until_async(lambda: engine.status("t").channels == 0, 3, "the channel closed")
        await wait_until_async(lambda: calls, 3, "a trim after the burst")
        await asyncio.sleep(settings.stats_interval * 6)
        assert len(calls) == 1  # quiet since: nothing more to hand back
