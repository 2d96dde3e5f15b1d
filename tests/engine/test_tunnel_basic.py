"""TunnelEngine against the in-process asyncssh bastion: up, bytes, status, events, stop."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.fixtures.echo import echo_through
from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState
from tunnel_tui.engine import HostKeyUnknown, LocalPortInUse, Tunnel, TunnelEngine


def _conn(bastion, echo, **kw):
    return make_conn("t1", [(bastion.host, bastion.port, bastion.user)],
                     ("127.0.0.1", echo.port), **kw)


async def test_start_forward_status_and_stop(asyncssh_bastion, echo_server, engine_known_hosts):
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    engine = TunnelEngine(engine_known_hosts, FAST)
    events = []
    engine.subscribe(events.append)
    try:
        status = await engine.start(_conn(asyncssh_bastion, echo_server), keys)
        assert status.state is TunnelState.UP
        assert status.local_host == "127.0.0.1" and status.local_port
        assert await echo_through(status.local_port, b"hello tunnel") == b"hello tunnel"
        await wait_until_async(lambda: engine.status("t1").bytes_in >= 12, 3, "bytes counted")
        s = engine.status("t1")
        assert s.bytes_out == 12 and s.bytes_in == 12
        await wait_until_async(lambda: engine.status("t1").channels == 0, 3, "channel closed")
        await wait_until_async(lambda: any(e.bytes_in == 12 for e in events), 3, "counter event")
        assert [e.state for e in events][:2] == [TunnelState.CONNECTING, TunnelState.UP]
        # Start again: a no-op with the same port.
        again = await engine.start(_conn(asyncssh_bastion, echo_server), keys)
        assert again.local_port == status.local_port
        port = status.local_port
    finally:
        await engine.aclose()
    assert events[-1].state is TunnelState.DOWN
    with pytest.raises(OSError):
        await echo_through(port, b"x")


async def test_listener_binds_loopback_only(asyncssh_bastion, echo_server, engine_known_hosts):
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    async with Tunnel(_conn(asyncssh_bastion, echo_server), keys, engine_known_hosts,
                      settings=FAST) as t:
        tunnel = t.engine.tunnel("t1")
        hosts = {addr for addr, _ in tunnel.listening}
        assert hosts <= {"127.0.0.1", "::1"} and "127.0.0.1" in hosts
        assert all(port == t.local_port for _, port in tunnel.listening)


async def test_port_in_use_is_clear_and_nothing_half_up(
    asyncssh_bastion, echo_server, engine_known_hosts
):
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(LocalPortInUse) as info:
            await engine.start(_conn(asyncssh_bastion, echo_server, local_port=busy), keys)
        assert str(busy) in info.value.message
        assert "python" in info.value.message  # the holder (this test process) is named
        assert info.value.hint
        assert engine.statuses() == []
        assert asyncssh_bastion.auth_attempts == 0  # no SSH login for a busy port
    finally:
        blocker.close()
        await engine.aclose()


async def test_unknown_host_key_is_refused(asyncssh_bastion, echo_server, engine_known_hosts):
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(HostKeyUnknown) as info:
            await engine.start(_conn(asyncssh_bastion, echo_server), keys)
        assert info.value.fingerprint == asyncssh_bastion.host_fingerprint
        assert f"--accept-host-key {asyncssh_bastion.host_fingerprint}" in (info.value.hint or "")
    finally:
        await engine.aclose()


async def test_counter_events_are_coalesced(asyncssh_bastion, echo_server, engine_known_hosts):
    import dataclasses

    from tests.fixtures.engine import FAST as fast

    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    engine = TunnelEngine(engine_known_hosts, dataclasses.replace(fast, stats_interval=0.25))
    events = []
    try:
        status = await engine.start(_conn(asyncssh_bastion, echo_server), keys)
        engine.subscribe(events.append)
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", status.local_port)
        t0 = loop.time()
        for _ in range(300):  # many small round trips: hundreds of counter changes
            writer.write(b"x" * 100)
            await reader.readexactly(100)
        duration = loop.time() - t0
        writer.close()
        await wait_until_async(lambda: engine.status("t1").bytes_in == 30000 and events
                               and events[-1].bytes_in == 30000, 3, "final counters published")
        assert len(events) <= duration / 0.25 + 4, (len(events), duration)
    finally:
        await engine.aclose()


async def test_switch_to_a_rejected_key_changes_nothing(asyncssh_bastion, echo_server,
                                                        engine_known_hosts):
    import asyncssh

    from tunnel_tui.engine import AuthRejected

    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(_conn(asyncssh_bastion, echo_server), keys)
        link = engine.tunnel("t1").link
        wrong = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
        with pytest.raises(AuthRejected) as rejected:
            await engine.switch_key("k-test", "k-new", Secret(wrong), "tunnel-tui:team-new")
        # The line to add names the new key, as everywhere (issue 19.7).
        assert (rejected.value.hint or "").endswith(" tunnel-tui:team-new")
        assert engine.tunnel("t1").link is link and engine.tunnel("t1").conn.key_id == "k-test"
        assert await echo_through(status.local_port, b"unchanged") == b"unchanged"
    finally:
        await engine.aclose()


async def test_port_held_on_ipv6_loopback_is_in_use_too(
    asyncssh_bastion, echo_server, engine_known_hosts
):
    # Clients resolving "localhost" to ::1 would reach the other program: refuse.
    try:
        other = socket.socket(socket.AF_INET6)
        other.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    other.listen(1)
    port = other.getsockname()[1]
    trust(engine_known_hosts, asyncssh_bastion.host, asyncssh_bastion.port,
          asyncssh_bastion.host_public_line)
    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(LocalPortInUse) as info:
            await engine.start(_conn(asyncssh_bastion, echo_server, local_port=port), keys)
        assert "::1" in info.value.message and str(port) in info.value.message
        # Nothing half-up: 127.0.0.1:port is free again.
        probe = socket.socket()
        probe.bind(("127.0.0.1", port))
        probe.close()
    finally:
        other.close()
        await engine.aclose()


async def test_non_loopback_bind_is_refused(asyncssh_bastion, echo_server, engine_known_hosts):
    import dataclasses

    from tunnel_tui.core.errors import UsageError

    keys = {"k-test": Secret(asyncssh_bastion.client_private_pem)}
    conn = dataclasses.replace(_conn(asyncssh_bastion, echo_server), local_host="0.0.0.0")
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(UsageError):
            await engine.start(conn, keys)
        assert asyncssh_bastion.auth_attempts == 0
    finally:
        await engine.aclose()
