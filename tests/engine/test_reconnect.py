"""Keepalive, reconnect and permanent failures against a real sshd (small timings)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from tests.fixtures.echo import echo_through
from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.model import Keepalive
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState
from tunnel_tui.engine import TunnelEngine
from tunnel_tui.engine.reconnect import backoff_delay


def _setup(server, kh, keypair):
    server.authorize(keypair.public_line)
    trust(kh, server.host, server.port, server.host_public_key)
    return {"k-test": Secret(keypair.private_pem)}


def test_backoff_is_capped_jittered_and_growing():
    import random

    rng = random.Random(1)
    delays = [backoff_delay(n, 0.5, 8.0, rng) for n in range(12)]
    assert all(0.05 <= d <= 8.0 for d in delays)
    assert max(delays[8:]) <= 8.0
    assert len(set(delays)) >= 10  # jittered (a few may hit the 10 % floor)
    assert backoff_delay(0, 0.5, 8.0, random.Random(2)) <= 0.5


async def test_frozen_bastion_detected_by_keepalive_and_recovers_on_same_port(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _setup(server, engine_known_hosts, client_keypair)
    conn = make_conn("ka", [(server.host, server.port, server.user)],
                     ("127.0.0.1", echo_server.port), keepalive=Keepalive(1.0, 2))
    engine = TunnelEngine(engine_known_hosts, FAST)
    events = []
    engine.subscribe(events.append)
    frozen: list[int] = []
    try:
        status = await engine.start(conn, keys)
        port = status.local_port
        assert await echo_through(port, b"ping") == b"ping"
        before = set(server.session_pids())
        assert before
        frozen = sorted(before)
        # Keep the listener from accepting a new session too, so the tunnel stays down
        # until SIGCONT: freeze the listener as well.
        frozen.append(server.pid)
        t0 = time.monotonic()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        await wait_until_async(lambda: engine.status("ka").state is TunnelState.RECONNECTING, 8,
                               "reconnecting after keepalive")
        detected = time.monotonic() - t0
        assert detected < 1.0 * (2 + 1) + 2.5, detected
        assert "keepalive" in (engine.status("ka").last_error or "")
        # While down the port stays bound and a new client is refused at once.
        t1 = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await asyncio.wait_for(reader.read(10), 2) == b""
        except ConnectionResetError:
            pass
        writer.close()
        assert time.monotonic() - t1 < 1.0
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        frozen = []
        await wait_until_async(lambda: engine.status("ka").state is TunnelState.UP, 15, "up again")
        s = engine.status("ka")
        assert s.local_port == port and s.reconnects == 1
        assert await echo_through(port, b"back") == b"back"
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        await engine.aclose()
    states = [e.state for e in events]
    assert TunnelState.RECONNECTING in states


async def test_bastion_restart_reconnects_and_auth_loss_is_permanent(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _setup(server, engine_known_hosts, client_keypair)
    conn = make_conn("rs", [(server.host, server.port, server.user)],
                     ("127.0.0.1", echo_server.port))
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        port = (await engine.start(conn, keys)).local_port
        server.stop()
        await wait_until_async(lambda: engine.status("rs").state is TunnelState.RECONNECTING, 5,
                               "reconnecting")
        await wait_until_async(
            lambda: "connection refused" in (engine.status("rs").last_error or ""),
            5,
            "the retry's cause",
        )
        server.start()
        await wait_until_async(lambda: engine.status("rs").state is TunnelState.UP, 10, "up again")
        assert engine.status("rs").local_port == port
        assert await echo_through(port, b"again") == b"again"
        # Now the key is removed: the next reconnect fails for good, without a loop.
        server.deauthorize(client_keypair.public_line)
        server.restart()
        await wait_until_async(
            lambda: engine.status("rs").state is TunnelState.FAILED, 10, "failed"
        )
        s = engine.status("rs")
        assert "not retrying" in s.last_error and "authorized_keys" in s.hint
        attempts = server.log_text().count("Connection from 127.0.0.1")
        await asyncio.sleep(1.0)  # several backoff periods (cap 0.3 s): nothing may happen
        assert server.log_text().count("Connection from 127.0.0.1") == attempts
        # A failed tunnel releases its port.
        try:
            await echo_through(port, b"x")
            raise AssertionError("port still open")
        except OSError:
            pass
    finally:
        await engine.aclose()


async def test_restarted_postgres_does_not_kill_the_tunnel(
    sshd, client_keypair, engine_known_hosts, postgres_factory
):
    import asyncpg

    pg = postgres_factory()
    keys = _setup(sshd, engine_known_hosts, client_keypair)
    conn = make_conn("pg", [(sshd.host, sshd.port, sshd.user)], (pg.host, pg.port))
    engine = TunnelEngine(engine_known_hosts, FAST)

    async def query(port: int) -> int:
        c = await asyncpg.connect(host="127.0.0.1", port=port, user=pg.user,
                                  password=pg.password, database=pg.database, ssl=False,
                                  timeout=10)
        try:
            return await c.fetchval("SELECT 41 + 1")
        finally:
            await c.close()

    try:
        port = (await engine.start(conn, keys)).local_port
        assert await query(port) == 42
        await asyncio.get_running_loop().run_in_executor(None, pg.restart)
        assert await query(port) == 42
        s = engine.status("pg")
        assert s.state is TunnelState.UP and s.reconnects == 0
    finally:
        await engine.aclose()


async def test_host_key_changing_while_up_fails_for_good(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _setup(server, engine_known_hosts, client_keypair)
    conn = make_conn("hk", [(server.host, server.port, server.user)],
                     ("127.0.0.1", echo_server.port))
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        await engine.start(conn, keys)
        server.restart(new_host_key=True)  # the "server" now presents another key
        await wait_until_async(
            lambda: engine.status("hk").state is TunnelState.FAILED, 10, "failed"
        )
        s = engine.status("hk")
        assert "HOST KEY CHANGED" in s.last_error and "not retrying" in s.last_error
        assert "hosts forget" in s.hint
        assert engine_known_hosts.check(server.host, server.port, server.host_public_key) \
            == "changed"
    finally:
        await engine.aclose()
