"""Tunnel faults against a real OpenSSH sshd through the engine's public API
(issue 10 items 1, 4, 5, 6, 7, 10, 11, 13). Small keepalive/backoff values keep
each case to a few seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import asyncpg
import asyncssh
import pytest

from tests.fixtures.echo import echo_through
from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until, wait_until_async
from tests.reliability.helpers import (
    TunnelRunner,
    connection_attempts,
    connections_to,
    listening_sockets,
    runner_spec,
)
from tunnel_tui.core.model import Keepalive
from tunnel_tui.core.paths import known_hosts_path
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState
from tunnel_tui.engine import (
    AuthRejected,
    BastionUnreachable,
    EngineSettings,
    HostKeyChanged,
    TunnelEngine,
)

KA = Keepalive(0.5, 2)
DETECT = KA.interval * (KA.count_max + 1)


def _keys(server, kh, keypair) -> dict[str, Secret]:
    server.authorize(keypair.public_line)
    trust(kh, server.host, server.port, server.host_public_key)
    return {"k-test": Secret(keypair.private_pem)}


def _state(engine: TunnelEngine, name: str) -> TunnelState:
    return engine.status(name).state


# -- 1. frozen bastion ----------------------------------------------------------------


async def test_frozen_session_goes_reconnecting_in_time_and_the_frozen_one_is_dropped(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    conn = make_conn("fz", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    frozen: list[int] = []
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        try:
            port = (await engine.start(conn, keys)).local_port
            assert await echo_through(port) == b"ping"
            frozen = server.session_pids()
            assert frozen
            t0 = time.monotonic()
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            await wait_until_async(lambda: _state(engine, "fz") is TunnelState.RECONNECTING,
                                   DETECT + 3, "reconnecting")
            assert time.monotonic() - t0 <= DETECT + 1.5
            # The listener still answers: a new SSH connection brings it back on the same port.
            await wait_until_async(lambda: _state(engine, "fz") is TunnelState.UP, 10, "up again")
            status = engine.status("fz")
            assert status.local_port == port and status.reconnects == 1
            assert await echo_through(port, b"again") == b"again"
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        # Thawed, the old session finds its client gone and exits: one connection left.
        await wait_until_async(
            lambda: len(server.connection_pids()) == 1,
            10,
            lambda: f"one bastion connection left (now {server.connection_pids()})",
        )


# -- 4. bastion restart: capped, jittered backoff, no tight loop -------------------------


class CountingPort:
    """Holds the bastion's port while it is 'down': accepts and closes at once,
    recording when each connection attempt arrived."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.times.append(time.monotonic())
            client.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


async def test_bastion_restart_backoff_is_capped_and_jittered_without_a_tight_loop(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    conn = make_conn("rs", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    base, cap, window = 0.1, 0.6, 4.0
    settings = EngineSettings(backoff_base=base, backoff_cap=cap, connect_timeout=3.0,
                              stats_interval=0.05)
    async with TunnelEngine(engine_known_hosts, settings) as engine:
        port = (await engine.start(conn, keys)).local_port
        server.stop()
        counter = CountingPort(server.port)
        try:
            await wait_until_async(lambda: _state(engine, "rs") is TunnelState.RECONNECTING, 5,
                                   "reconnecting")
            await asyncio.sleep(window)  # the outage being measured
        finally:
            counter.close()
        # Each attempt may be two TCP connections a few ms apart: the handshake, then the
        # engine's probe for a changed host key *type* (ssh.py) when the server hung up.
        attempts: list[list[float]] = []
        for t in counter.times:
            if attempts and t - attempts[-1][-1] < 0.015:
                attempts[-1].append(t)
            else:
                attempts.append([t])
        starts = [a[0] for a in attempts]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert all(len(a) <= 3 for a in attempts), counter.times
        # A tight loop would be hundreds of attempts; the floor of the jitter (a tenth of
        # the cap) bounds it hard, full jitter makes the mean gap about half the cap.
        assert 3 <= len(attempts) <= window / (cap * 0.1), starts
        assert sum(gaps) / len(gaps) >= cap / 4, gaps
        assert max(gaps) <= cap + 0.5, gaps  # capped
        assert len({round(g, 2) for g in gaps}) >= max(2, len(gaps) // 2), gaps  # jittered
        server.start()
        log_before = connection_attempts(server)
        await wait_until_async(lambda: _state(engine, "rs") is TunnelState.UP, cap + 5, "up")
        assert engine.status("rs").local_port == port
        assert await echo_through(port) == b"ping"
        assert connection_attempts(server) - log_before <= 2


# -- 5. reconnect storm ---------------------------------------------------------------------


@pytest.mark.slow
async def test_reconnect_storm_twenty_keys_maxstartups_two_all_come_back(
    sshd_factory, engine_known_hosts, echo_server
):
    server = sshd_factory(options={"MaxStartups": "2"})
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    n = 20
    conns, keys = [], {}
    for i in range(n):
        key = asyncssh.generate_private_key("ssh-ed25519")
        server.authorize(key.export_public_key().decode().strip())
        keys[f"k{i}"] = Secret(key.export_private_key().decode())
        conns.append(make_conn(f"s{i}", [(server.host, server.port, server.user)],
                               (echo_server.host, echo_server.port), key_id=f"k{i}",
                               keepalive=KA))
    settings = EngineSettings(backoff_base=0.2, backoff_cap=1.5, connect_timeout=5.0,
                              stats_interval=0.1)
    async with TunnelEngine(engine_known_hosts, settings) as engine:
        for c in conns:  # one at a time: MaxStartups 2 refuses bursts of handshakes
            await engine.start(c, {c.key_id: keys[c.key_id]})
        assert len(server.connection_pids()) == n  # each key its own SSH connection
        ports = [engine.status(c.name).local_port for c in conns]
        server.restart()
        await wait_until_async(
            lambda: all(s.state is TunnelState.UP and s.reconnects >= 1
                        for s in engine.statuses()),
            45, "all 20 tunnels up again",
        )
        assert [engine.status(c.name).local_port for c in conns] == ports
        echoes = await asyncio.gather(
            *(echo_through(p, f"n{i}".encode()) for i, p in enumerate(ports))
        )
        assert echoes == [f"n{i}".encode() for i in range(n)]
        assert "failed" not in {s.state.value for s in engine.statuses()}


# -- 6. database restart / down ----------------------------------------------------------------


async def _pg(port: int, pg, sql: str = "select 1") -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user=pg.user,
                                 password=pg.password, database=pg.database, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close(timeout=2)


async def test_db_restart_keeps_the_tunnel_and_db_down_names_address_and_refusal(
    sshd_factory, client_keypair, engine_known_hosts, postgres_factory
):
    pg = postgres_factory()
    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    conn = make_conn("db", [(server.host, server.port, server.user)], (pg.host, pg.port),
                     keepalive=KA)
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        events = []
        engine.subscribe(events.append)
        port = (await engine.start(conn, keys)).local_port
        assert await _pg(port, pg) == 1
        await asyncio.to_thread(pg.restart)
        assert await _pg(port, pg, "select 2") == 2
        status = engine.status("db")
        assert status.state is TunnelState.UP and status.reconnects == 0
        assert {e.state for e in events} == {TunnelState.CONNECTING, TunnelState.UP}

        await asyncio.to_thread(pg.stop)
        with pytest.raises((OSError, asyncpg.PostgresError, asyncio.TimeoutError)):
            await _pg(port, pg)
        status = engine.status("db")
        assert status.state is TunnelState.UP  # the SSH side is fine
        error = status.last_error or ""
        assert f"{pg.host}:{pg.port}" in error and "connection refused" in error, error
        await asyncio.to_thread(pg.start)
        assert await _pg(port, pg, "select 3") == 3


# -- 7. idle channel killed by the bastion --------------------------------------------------------


async def test_channel_timeout_closes_cleanly_and_the_next_connection_works(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory(options={"ChannelTimeout": "direct-tcpip=2s"})
    keys = _keys(server, engine_known_hosts, client_keypair)
    conn = make_conn("ct", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=Keepalive(30, 3))
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        port = (await engine.start(conn, keys)).local_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hi")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"hi"
        t0 = time.monotonic()
        # Idle: the bastion closes the channel; the client sees a clean EOF, not a hang.
        assert await asyncio.wait_for(reader.read(10), 15) == b""
        # sshd counts idle time in whole seconds: it may close up to 1 s early.
        assert time.monotonic() - t0 >= 0.9
        writer.close()
        await wait_until_async(lambda: engine.status("ct").channels == 0, 5, "channel released")
        status = engine.status("ct")
        assert status.state is TunnelState.UP and status.reconnects == 0
        assert await echo_through(port, b"next") == b"next"


# -- 10. the tunnel process frozen longer than the server's ClientAlive window ----------------


@pytest.mark.slow
def test_tunnel_process_sigstopped_past_clientalive_reconnects_after_sigcont(
    sshd_factory, client_keypair, echo_server
):
    server = sshd_factory(options={"ClientAliveInterval": "1", "ClientAliveCountMax": "1"})
    server.authorize(client_keypair.public_line)
    runner = TunnelRunner(runner_spec(server, client_keypair.private_pem,
                                      (echo_server.host, echo_server.port),
                                      keepalive=[30, 3]))
    try:
        up = runner.wait_state("up", 15)
        port = up["local_port"]
        session = server.connection_pids()
        assert len(session) == 1
        os.kill(runner.pid, signal.SIGSTOP)
        try:
            # sshd gives up on the silent client after ~2 s and closes its session.
            wait_until(lambda: not set(session) & set(server.connection_pids()), 10,
                       "sshd dropping the frozen client")
        finally:
            os.kill(runner.pid, signal.SIGCONT)
        count = len(runner.states())
        runner.wait_state("reconnecting", 10, after=count)
        back = runner.wait_state("up", 10, after=count)
        assert back["local_port"] == port and back["reconnects"] >= 1
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"thawed")
            sock.settimeout(5)
            assert sock.recv(16) == b"thawed"
    finally:
        runner.stop()


# -- 11 / 13. permanent failures: exactly one attempt, known_hosts untouched --------------------


async def test_rejected_key_fails_permanently_after_exactly_one_attempt(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    conn = make_conn("rk", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        with pytest.raises(AuthRejected) as err:
            await engine.start(conn, {"k-test": Secret(client_keypair.private_pem)})
        assert "authorized_keys" in (err.value.hint or "")
        await asyncio.sleep(1.0)  # FAST backoff would have retried ~5 times by now
        assert connection_attempts(server) == 1
        assert engine.statuses() == []


async def test_changed_host_key_on_first_connect_one_attempt_and_known_hosts_unchanged(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    server.authorize(client_keypair.public_line)
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    trust(engine_known_hosts, server.host, server.port, other)
    kh_file = known_hosts_path()
    before = kh_file.read_bytes()
    conn = make_conn("hk", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        for accept_new in (False, True):  # "accept new" never means "no check"
            with pytest.raises(HostKeyChanged) as err:
                await engine.start(conn, {"k-test": Secret(client_keypair.private_pem)},
                                   accept_new_host_key=accept_new)
            assert "man-in-the-middle" in err.value.message
            assert server.host_fingerprint in err.value.message
        await asyncio.sleep(1.0)  # an absence: FAST backoff would have retried by now
        assert connection_attempts(server) == 2  # one per start(), no retries
    assert kh_file.read_bytes() == before


async def test_host_key_changed_after_trust_stops_the_live_tunnel_with_a_mitm_warning(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    kh_file = known_hosts_path()
    before = kh_file.read_bytes()
    conn = make_conn("mitm", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        port = (await engine.start(conn, keys)).local_port
        server.restart(new_host_key=True)  # same address, another host key
        log_before = connection_attempts(server)
        await wait_until_async(lambda: _state(engine, "mitm") is TunnelState.FAILED, 10, "failed")
        status = engine.status("mitm")
        assert "man-in-the-middle" in (status.last_error or "")
        assert "not retrying" in (status.last_error or "")
        await asyncio.sleep(1.0)  # an absence: FAST backoff would have retried by now
        assert connection_attempts(server) - log_before == 1
        with pytest.raises(OSError):  # the local port is closed, not silently half-up
            await echo_through(port)
    assert kh_file.read_bytes() == before


# -- 12. another program on [::1]:PORT must not silently get our localhost clients -------


async def test_a_squatter_on_ipv6_loopback_makes_start_fail_with_nothing_bound(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    from tests.fixtures.ports import free_port
    from tunnel_tui.engine import LocalPortInUse

    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    port = free_port()
    squatter = socket.socket(socket.AF_INET6)
    squatter.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    squatter.bind(("::1", port))
    squatter.listen(1)
    conn = make_conn("sq", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), local_port=port, keepalive=KA)
    try:
        async with TunnelEngine(engine_known_hosts, FAST) as engine:
            with pytest.raises(LocalPortInUse) as err:
                await engine.start(conn, keys)
            assert "::1" in err.value.message and str(port) in err.value.message
            assert "pid" in err.value.message  # names who holds it
            with pytest.raises(OSError):  # nothing left half-up on 127.0.0.1
                await echo_through(port)
            assert connection_attempts(server) == 0  # failed before touching the bastion
    finally:
        squatter.close()


# -- a bastion that accepts TCP and never speaks SSH --------------------------------------


async def test_a_hung_bastion_fails_start_within_the_connect_timeout(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    conn = make_conn("hung", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    timeout = 1.5
    settings = EngineSettings(backoff_base=0.05, backoff_cap=0.3, connect_timeout=timeout)
    os.kill(server.pid, signal.SIGSTOP)  # the kernel still completes the TCP handshake
    try:
        async with TunnelEngine(engine_known_hosts, settings) as engine:
            t0 = time.monotonic()
            with pytest.raises(BastionUnreachable) as err:
                await engine.start(conn, keys)
            elapsed = time.monotonic() - t0
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert "timed out" in err.value.message
    assert elapsed <= timeout + 1.0, f"took {elapsed:.1f} s with a {timeout} s connect timeout"


# -- stopping and cancelling while the bastion hangs --------------------------------------


async def test_stop_during_a_hung_reconnect_returns_at_once_and_frees_the_port(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    conn = make_conn("st", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), keepalive=KA)
    settings = EngineSettings(backoff_base=0.05, backoff_cap=0.2, connect_timeout=30.0)
    frozen = []
    try:
        async with TunnelEngine(engine_known_hosts, settings) as engine:
            port = (await engine.start(conn, keys)).local_port
            # A forward first: the session's post-auth child exists once data flows.
            assert await echo_through(port) == b"ping"
            frozen = [*server.session_pids(), server.pid]
            first_link = connections_to(server.port)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            await wait_until_async(lambda: _state(engine, "st") is TunnelState.RECONNECTING,
                                   DETECT + 3, "reconnecting")
            # A reconnect attempt connected to the frozen sshd: stuck in the handshake.
            await wait_until_async(lambda: connections_to(server.port) - first_link, 10,
                                   "a reconnect attempt connected")
            t0 = time.monotonic()
            await engine.stop("st")
            assert time.monotonic() - t0 < 2.0
            with pytest.raises(OSError):
                await echo_through(port)
            assert engine.statuses() == []
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)


async def test_a_cancelled_start_against_a_hung_bastion_leaves_nothing_bound(
    sshd_factory, client_keypair, engine_known_hosts, echo_server
):
    from tests.fixtures.ports import free_port
    from tests.reliability.helpers import open_fds

    server = sshd_factory()
    keys = _keys(server, engine_known_hosts, client_keypair)
    port = free_port()
    conn = make_conn("cx", [(server.host, server.port, server.user)],
                     (echo_server.host, echo_server.port), local_port=port, keepalive=KA)
    settings = EngineSettings(backoff_base=0.05, backoff_cap=0.2, connect_timeout=30.0)
    fds = open_fds(os.getpid())
    os.kill(server.pid, signal.SIGSTOP)
    try:
        async with TunnelEngine(engine_known_hosts, settings) as engine:
            task = asyncio.ensure_future(engine.start(conn, keys))
            # Bound and connected to the frozen sshd: waiting for the SSH handshake.
            await wait_until_async(
                lambda: any(p == port for _, p in listening_sockets(os.getpid()))
                and connections_to(server.port),
                10,
                "the port bound and the bastion connected",
            )
            task.cancel()  # Ctrl-C in `forward`, a closed TUI screen...
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(OSError):
                await echo_through(port)
            assert engine.statuses() == []
    finally:
        os.kill(server.pid, signal.SIGCONT)
    await wait_until_async(lambda: open_fds(os.getpid()) <= fds, 5, "fds back to baseline")
    # and the same port can be used right away
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        assert (await engine.start(conn, keys)).local_port == port
