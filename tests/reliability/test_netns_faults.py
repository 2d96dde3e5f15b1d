"""Network faults between a tunnel process and a real OpenSSH bastion, each in its own
private network namespace joined by a veth pair (issue 10 items 2, 3, 12).

    [test] --relay--> client ns: tunnel_runner (TunnelEngine) --veth--> server ns: sshd
                                                                    \\-> relay -> PostgreSQL
"""

from __future__ import annotations

import asyncio
import socket
import time

import asyncpg
import pytest

from tests.fixtures.netns import start_relay
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import wait_until, wait_until_async
from tests.reliability.helpers import TunnelRunner, listening_sockets, runner_spec

pytestmark = pytest.mark.netns

KEEPALIVE = (0.5, 2)  # detection ≈ 0.5 × (2 + 1) = 1.5 s
DETECT_BUDGET = KEEPALIVE[0] * (KEEPALIVE[1] + 1) + 2.0


def _banner(port: int, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.settimeout(5)
        return sock.recv(64)


@pytest.fixture
def bastion_in_netns(netns_pair, netns_sshd, client_keypair):
    server = netns_sshd(netns_pair.server, host=netns_pair.server_addr)
    server.authorize(client_keypair.public_line)
    return server


def _start_runner(pair, server, keypair, target, **extra) -> tuple[TunnelRunner, int, int]:
    """Runner in the client namespace; returns it, its local port and a root-ns port
    relayed to that local port (the same local port across reconnects)."""
    port_in_ns = free_port()
    runner = TunnelRunner(
        runner_spec(server, keypair.private_pem, target, keepalive=list(KEEPALIVE),
                    local_port=port_in_ns, **extra),
        netns=pair.client,
    )
    up = runner.wait_state("up", 15)
    assert up["local_port"] == port_in_ns
    outside = free_port()
    start_relay(None, ("127.0.0.1", outside), pair.client, ("127.0.0.1", port_in_ns))
    return runner, port_in_ns, outside


def test_blackholed_path_is_detected_and_recovers_on_the_same_port(
    netns_pair, bastion_in_netns, client_keypair
):
    server = bastion_in_netns
    runner, local, outside = _start_runner(
        netns_pair, server, client_keypair, (server.host, server.port)
    )
    try:
        assert _banner(outside).startswith(b"SSH-2.0-")
        count = len(runner.states())
        t0 = time.monotonic()
        netns_pair.client.blackhole(server.host)
        event = runner.wait_state("reconnecting", DETECT_BUDGET + 2, after=count)
        detected = time.monotonic() - t0
        assert detected <= DETECT_BUDGET, detected
        assert event["local_port"] == local
        assert event["last_error"]
        # While the path is dead it keeps trying, but stays reconnecting (not up, not failed).
        assert "failed" not in runner.states()
        count = len(runner.states())
        netns_pair.client.unblackhole(server.host)
        up = runner.wait_state("up", 10, after=count)
        assert up["local_port"] == local and up["reconnects"] >= 1
        assert _banner(outside).startswith(b"SSH-2.0-")
    finally:
        runner.stop()


RUNNING = "select count(*) from pg_stat_activity where state = 'active' and query = '{}'"


async def _query(port: int, pg, sql: str, timeout: float = 10) -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user=pg.user,
                                 password=pg.password, database=pg.database, timeout=timeout)
    try:
        return await asyncio.wait_for(conn.fetchval(sql), timeout)
    finally:
        await conn.close(timeout=2)


@pytest.mark.slow
def test_link_down_mid_query_errors_then_the_next_query_works_on_the_same_port(
    netns_pair, bastion_in_netns, client_keypair, postgres
):
    server = bastion_in_netns
    # PostgreSQL as the bastion sees it: 127.0.0.1:5432 inside the server namespace.
    start_relay(netns_pair.server, ("127.0.0.1", 5432), None, (postgres.host, postgres.port))
    runner, local, outside = _start_runner(
        netns_pair, server, client_keypair, ("127.0.0.1", 5432)
    )
    try:
        assert asyncio.run(_query(outside, postgres, "select 41 + 1")) == 42

        async def long_query_across_a_link_cut() -> BaseException | None:
            task = asyncio.ensure_future(_query(outside, postgres, "select pg_sleep(20)", 25))
            await wait_until_async(
                lambda: _query(postgres.port, postgres, RUNNING.format("select pg_sleep(20)")),
                10,
                "the query running on the server",
            )
            netns_pair.client.link(netns_pair.client_dev, up=False)
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(task, DETECT_BUDGET + 5)
            except Exception as exc:  # what the DB client sees
                assert time.monotonic() - t0 <= DETECT_BUDGET + 3
                return exc
            return None

        count = len(runner.states())
        error = asyncio.run(long_query_across_a_link_cut())
        assert error is not None, "the query 'succeeded' across a dead link"
        assert not isinstance(error, asyncio.TimeoutError), "the DB client hung"
        runner.wait_state("reconnecting", 5, after=count)
        time.sleep(2)  # the outage: the link stays down a few seconds (the fault itself)
        count = len(runner.states())
        netns_pair.client.link(netns_pair.client_dev, up=True)
        up = runner.wait_state("up", 15, after=count)
        assert up["local_port"] == local and up["reconnects"] >= 1
        assert asyncio.run(_query(outside, postgres, "select 'back'")) == "back"
    finally:
        runner.stop()


def test_listeners_bind_loopback_only(netns_pair, bastion_in_netns, client_keypair):
    server = bastion_in_netns
    runner, local, _ = _start_runner(netns_pair, server, client_keypair,
                                     (server.host, server.port))
    try:
        sockets = listening_sockets(runner.pid)
        assert sockets, "the tunnel process listens on nothing"
        assert {port for _, port in sockets} == {local}
        assert {addr for addr, _ in sockets} <= {"127.0.0.1", "::1"}, sockets
        # The client namespace's own veth address must not reach the tunnel.
        probe = netns_pair.client.run(
            ["python3", "-c",
             f"import socket; socket.create_connection(('{netns_pair.client_addr}', {local}), 2)"],
            check=False,
        )
        assert probe.returncode != 0 and "refused" in probe.stderr.lower(), probe.stderr
    finally:
        runner.stop()


def test_localhost_works_when_ipv6_is_unavailable(netns_factory, netns_sshd, client_keypair):
    ns = netns_factory()
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
    ns.sysctl("net.ipv6.conf.lo.disable_ipv6", "1")
    server = netns_sshd(ns, host="127.0.0.1")
    server.authorize(client_keypair.public_line)
    local = free_port()
    runner = TunnelRunner(
        runner_spec(server, client_keypair.private_pem, (server.host, server.port),
                    local_port=local),
        netns=ns,
    )
    try:
        up = runner.wait_state("up", 15)
        assert up["local_port"] == local
        assert {a for a, _ in listening_sockets(runner.pid)} == {"127.0.0.1"}
        client = ns.run(
            ["python3", "-c",
             "import socket\n"
             f"s = socket.create_connection(('localhost', {local}), 5)\n"
             "s.settimeout(5)\nprint(s.recv(64).decode())"],
        )
        assert client.stdout.startswith("SSH-2.0-"), client
    finally:
        runner.stop()


def test_netns_teardown_leaves_nothing(netns_factory):
    import subprocess

    ns = netns_factory()
    proc = ns.popen(["sleep", "60"])
    wait_until(lambda: proc.pid > 0, 1, "pid")
    ns.close()
    assert proc.poll() is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns.name not in listed


def test_a_bastion_that_never_answers_fails_start_within_the_connect_timeout(
    netns_pair, bastion_in_netns, client_keypair
):
    """SYNs reach the bastion, its answers are dropped (the server side blackholes the
    client): no RST, no ICMP, a plain hang that only a timeout can end."""
    server = bastion_in_netns
    netns_pair.server.blackhole(netns_pair.client_addr)
    t0 = time.monotonic()
    runner = TunnelRunner(
        runner_spec(server, client_keypair.private_pem, (server.host, server.port),
                    connect_timeout=2.0),
        netns=netns_pair.client,
    )
    try:
        error = runner.wait_error(10)
        elapsed = time.monotonic() - t0
        assert error["type"] == "BastionUnreachable", error
        assert "timed out" in error["message"], error
        assert server.host in error["message"] and str(server.port) in error["message"]
        assert 1.5 <= elapsed <= 6, elapsed
        wait_until(lambda: runner.proc.poll() is not None, 5, "the runner exiting")
    finally:
        runner.stop()


SOURCE = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(8)
print("ready", flush=True)
chunk = b"x" * 65536
while True:
    conn, _ = srv.accept()
    try:
        while True:
            conn.sendall(chunk)
    except OSError:
        conn.close()
"""


def test_blackhole_during_a_bulk_download_is_detected_in_time(
    netns_pair, bastion_in_netns, client_keypair
):
    """The path dies while the tunnel is busy (windows full, buffers queued): the
    keepalive must still notice within its budget."""
    import subprocess
    import sys

    server = bastion_in_netns
    source_port = free_port()
    source = netns_pair.server.popen([sys.executable, "-c", SOURCE, str(source_port)],
                                     stdout=subprocess.PIPE, text=True)
    assert source.stdout is not None and source.stdout.readline().strip() == "ready"
    runner, local, outside = _start_runner(netns_pair, server, client_keypair,
                                           ("127.0.0.1", source_port))
    try:
        with socket.create_connection(("127.0.0.1", outside), timeout=5) as sock:
            got = 0
            while got < 8 << 20:  # the download is flowing
                got += len(sock.recv(1 << 20))
            count = len(runner.states())
            t0 = time.monotonic()
            netns_pair.client.blackhole(server.host)
            runner.wait_state("reconnecting", DETECT_BUDGET + 2, after=count)
            assert time.monotonic() - t0 <= DETECT_BUDGET
            # The stalled download ends (reset or EOF) instead of hanging forever.
            sock.settimeout(5)
            try:
                while sock.recv(1 << 20):
                    pass
            except (ConnectionResetError, TimeoutError) as exc:
                assert not isinstance(exc, TimeoutError), "the client hangs on a dead tunnel"
        netns_pair.client.unblackhole(server.host)
        assert runner.wait_state("up", 10, after=count)["local_port"] == local
    finally:
        runner.stop()
