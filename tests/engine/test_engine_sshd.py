"""TunnelEngine against a real OpenSSH sshd: forward errors keep their cause, bulk
transfer, many clients without leaks, jump hosts, key switch, sharing."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from tests.fixtures.echo import echo_through
from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState
from tunnel_tui.engine import (
    AuthRejected,
    BastionUnreachable,
    HostKeyChanged,
    HostKeyUnknown,
    TunnelEngine,
)
from tunnel_tui.engine.transport import open_tcp


def _conn(server, target, name="t", **kw):
    return make_conn(name, [(server.host, server.port, server.user)], target, **kw)


def _ready(server, kh, keypair):
    server.authorize(keypair.public_line)
    trust(kh, server.host, server.port, server.host_public_key)
    return {"k-test": Secret(keypair.private_pem)}


async def _expect_reset_fast(port: int) -> float:
    """A local client whose forward cannot open is closed promptly (no hang)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = await asyncio.wait_for(reader.read(100), 5)
        assert data == b""
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    return loop.time() - t0


@pytest.mark.parametrize(
    ("options", "target", "expect", "hint_word"),
    [
        ({}, ("127.0.0.1", None), "could not reach 127.0.0.1:{port}: connection refused",
         "listens"),
        ({}, ("nonexistent.invalid", 5432), "could not reach nonexistent.invalid:5432",
         "resolve"),
        ({"PermitOpen": "127.0.0.1:1"}, ("127.0.0.1", "echo"), "refused to forward",
         "PermitOpen"),
        ({"AllowTcpForwarding": "no"}, ("127.0.0.1", "echo"), "refused to forward",
         "AllowTcpForwarding"),
    ],
    ids=["db-port-closed", "dns-failure-on-bastion", "permitopen", "allowtcpforwarding-no"],
)
async def test_channel_open_failure_keeps_its_cause(
    sshd, sshd_factory, client_keypair, engine_known_hosts, echo_server, free_tcp_port,
    options, target, expect, hint_word,
):
    server = sshd_factory(options) if options else sshd
    keys = _ready(server, engine_known_hosts, client_keypair)
    host, port = target
    port = echo_server.port if port == "echo" else (free_tcp_port if port is None else port)
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(_conn(server, (host, port)), keys)
        elapsed = await _expect_reset_fast(status.local_port)
        assert elapsed < 3
        s = await wait_until_async(lambda: engine.status("t").last_error and engine.status("t"), 3,
                                   "the cause in the status")
        assert expect.format(port=port) in s.last_error
        assert hint_word in s.hint
        assert s.state is TunnelState.UP  # the tunnel itself is fine
        await wait_until_async(lambda: engine.status("t").channels == 0, 3, "no channel left")
    finally:
        await engine.aclose()


async def test_64_mib_arrive_intact(sshd, client_keypair, engine_known_hosts, echo_server):
    keys = _ready(sshd, engine_known_hosts, client_keypair)
    payload = os.urandom(64 * 1024 * 1024)
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys)
        reader, writer = await asyncio.open_connection("127.0.0.1", status.local_port)

        async def send() -> None:
            view = memoryview(payload)
            for i in range(0, len(payload), 1 << 20):
                writer.write(view[i : i + (1 << 20)])
                await writer.drain()
            writer.write_eof()

        async def receive() -> bytes:
            digest = hashlib.sha256()
            got = 0
            while got < len(payload):
                chunk = await reader.read(1 << 20)
                assert chunk, f"EOF after {got} bytes"
                digest.update(chunk)
                got += len(chunk)
            return digest.digest()

        _, received = await asyncio.wait_for(asyncio.gather(send(), receive()), 60)
        writer.close()
        assert received == hashlib.sha256(payload).digest()
        await wait_until_async(lambda: engine.status("t").bytes_in == len(payload), 3, "bytes_in")
        assert engine.status("t").bytes_out == len(payload)
    finally:
        await engine.aclose()


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_200_concurrent_clients_leave_nothing_behind(
    sshd, client_keypair, engine_known_hosts, echo_server
):
    keys = _ready(sshd, engine_known_hosts, client_keypair)
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys)
        port = status.local_port
        await echo_through(port, b"warm-up", timeout=10)
        await wait_until_async(
            lambda: engine.status("t").channels == 0, 5, "warm-up channel closed"
        )
        baseline = _fd_count()

        async def one(i: int) -> None:
            data = f"client {i} ".encode() * 50
            assert await echo_through(port, data, timeout=10) == data

        async def leave_mid_open() -> None:
            # Connect and vanish before the channel is open (the asyncssh leak pitfall).
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.transport.abort()

        await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(200)), *(leave_mid_open() for _ in range(50))),
            60,
        )
        await wait_until_async(lambda: engine.status("t").channels == 0, 10, "all channels closed")
        link = engine.tunnel("t").link
        await wait_until_async(lambda: link.channels == 0, 10, "link channel count back to 0")
        await wait_until_async(lambda: not link.bastion._channels or None, 10,  # noqa: SLF001
                               "asyncssh channel table empty")
        await wait_until_async(lambda: _fd_count() <= baseline, 10,
                               lambda: f"fds back to {baseline} (now {_fd_count()})")
        assert engine.status("t").state is TunnelState.UP
    finally:
        await engine.aclose()


async def test_proxyjump_through_two_sshd(sshd_factory, client_keypair, engine_known_hosts,
                                          echo_server):
    jump = sshd_factory()
    bastion = sshd_factory()
    keys = _ready(jump, engine_known_hosts, client_keypair)
    _ready(bastion, engine_known_hosts, client_keypair)
    conn = make_conn("pj", [(jump.host, jump.port, jump.user),
                            (bastion.host, bastion.port, bastion.user)],
                     ("127.0.0.1", echo_server.port))
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(conn, keys)
        hops = b"through two hops"
        assert await echo_through(status.local_port, hops, timeout=10) == hops
        assert len(engine.tunnel("pj").link.conns) == 2
        # The bastion's session came through the jump host (its own sshd saw it).
        assert bastion.user in bastion.log_text() and jump.session_pids()
    finally:
        await engine.aclose()


async def test_dead_second_hop_names_the_hop(sshd_factory, client_keypair, engine_known_hosts,
                                             free_tcp_port):
    jump = sshd_factory()
    keys = _ready(jump, engine_known_hosts, client_keypair)
    conn = make_conn("pj", [(jump.host, jump.port, jump.user), ("127.0.0.1", free_tcp_port, "x")],
                     ("127.0.0.1", 5432))
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(BastionUnreachable) as info:
            await engine.start(conn, keys)
        assert info.value.hop_index == 1
        assert f"bastion x@127.0.0.1:{free_tcp_port}" in info.value.message
        assert "connection refused" in info.value.message.lower()
    finally:
        await engine.aclose()


async def test_bastion_down_is_unreachable(sshd_factory, client_keypair, engine_known_hosts):
    server = sshd_factory()
    keys = _ready(server, engine_known_hosts, client_keypair)
    server.stop()
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(BastionUnreachable) as info:
            await engine.start(_conn(server, ("127.0.0.1", 5432)), keys)
        assert "connection refused" in info.value.message
        assert info.value.hint
    finally:
        await engine.aclose()


async def test_key_not_authorized_is_permanent_with_key_line(
    sshd, client_keypair, engine_known_hosts
):
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    keys = {"k-test": Secret(client_keypair.private_pem)}
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(AuthRejected) as info:
            await engine.start(_conn(sshd, ("127.0.0.1", 5432)), keys)
        hint = info.value.hint or ""
        assert f"~{sshd.user}/.ssh/authorized_keys on {sshd.host}" in hint
        assert client_keypair.public_line.split()[1] in hint
        assert engine.statuses() == []
    finally:
        await engine.aclose()


async def test_changed_host_key_is_a_hard_stop(sshd_factory, client_keypair, engine_known_hosts):
    server = sshd_factory()
    keys = _ready(server, engine_known_hosts, client_keypair)
    before = engine_known_hosts.trusted_keys(server.host, server.port)
    server.restart(new_host_key=True)
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(HostKeyChanged) as info:
            await engine.start(_conn(server, ("127.0.0.1", 5432)), keys)
        assert info.value.fingerprint == server.host_fingerprint
        assert "man-in-the-middle" in info.value.message
        assert engine_known_hosts.trusted_keys(server.host, server.port) == before
    finally:
        await engine.aclose()


async def test_unknown_host_key_accepted_only_on_request(
    sshd, client_keypair, engine_known_hosts, echo_server
):
    sshd.authorize(client_keypair.public_line)
    keys = {"k-test": Secret(client_keypair.private_pem)}
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(HostKeyUnknown):
            await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys)
        assert engine_known_hosts.trusted_keys(sshd.host, sshd.port) == []
        status = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys,
                                    accept_new_host_key=True)
        assert status.state is TunnelState.UP
        assert engine_known_hosts.check(sshd.host, sshd.port, sshd.host_public_key)
        trusted = engine_known_hosts.trusted_keys(sshd.host, sshd.port)
        assert [" ".join(t.split()[-2:]) for t in trusted] == [
            " ".join(sshd.host_public_key.split()[:2])
        ]
    finally:
        await engine.aclose()


async def test_tunnels_share_one_ssh_connection(sshd, client_keypair, engine_known_hosts,
                                                echo_server):
    keys = _ready(sshd, engine_known_hosts, client_keypair)
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        a = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port), name="a"), keys)
        b = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port), name="b"), keys)
        assert a.local_port != b.local_port
        assert engine.tunnel("a").link is engine.tunnel("b").link
        assert len(engine.pool.live_links) == 1
        await engine.stop("a")
        assert await echo_through(b.local_port, b"still here", timeout=10) == b"still here"
    finally:
        await engine.aclose()
    assert engine.pool.live_links == []


async def test_switch_key_keeps_open_channels(sshd, client_keypair, engine_known_hosts,
                                              echo_server):
    keys = _ready(sshd, engine_known_hosts, client_keypair)
    import asyncssh

    new = asyncssh.generate_private_key("ssh-ed25519")
    sshd.authorize(" ".join(new.export_public_key().decode().split()[:2]))
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys)
        reader, writer = await asyncio.open_connection("127.0.0.1", status.local_port)
        writer.write(b"before ")
        assert await reader.readexactly(7) == b"before "
        old_link = engine.tunnel("t").link
        moved = await engine.switch_key("k-test", "k-new",
                                        Secret(new.export_private_key().decode()))
        assert moved == ["t"]
        new_link = engine.tunnel("t").link
        assert new_link is not old_link and engine.tunnel("t").conn.key_id == "k-new"
        # The open session still works over the old connection...
        writer.write(b"after")
        assert await reader.readexactly(5) == b"after"
        assert old_link.alive
        # ...new clients go over the new one, and the old one closes after its last channel.
        assert await echo_through(status.local_port, b"new", timeout=10) == b"new"
        writer.close()
        await wait_until_async(lambda: not old_link.alive, 5, "old connection closed")
        assert engine.status("t").state is TunnelState.UP
        assert engine.status("t").local_port == status.local_port
    finally:
        await engine.aclose()


async def test_open_tcp_reports_refusal(free_tcp_port):
    with pytest.raises(ConnectionRefusedError):
        await open_tcp("127.0.0.1", free_tcp_port, 2)


async def test_changed_key_type_is_reported_as_changed(sshd, client_keypair,
                                                       engine_known_hosts):
    # Only an RSA key on file, the server has only ed25519: asyncssh offers RSA alone and
    # the server drops us (ASYNCSSH-NOTES §1). That must read as "changed", not "down".
    import asyncssh

    sshd.authorize(client_keypair.public_line)
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    trust(engine_known_hosts, sshd.host, sshd.port,
          rsa.export_public_key().decode().strip())
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        with pytest.raises(HostKeyChanged) as info:
            await engine.start(_conn(sshd, ("127.0.0.1", 5432)),
                               {"k-test": Secret(client_keypair.private_pem)})
        assert info.value.fingerprint == sshd.host_fingerprint
    finally:
        await engine.aclose()


async def test_clients_leaving_before_their_answer_keep_the_shared_link(
    sshd, client_keypair, engine_known_hosts, echo_server
):
    # The answer and the EOF reach a local socket the client already reset: that
    # must end one forward, never the SSH connection the other tunnels share.
    keys = _ready(sshd, engine_known_hosts, client_keypair)
    engine = TunnelEngine(engine_known_hosts, FAST)
    try:
        status = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys)
        link = engine.tunnel("t").link
        for i in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", status.local_port)
            writer.write(b"request" * 1000)
            await writer.drain()
            if i % 2:
                writer.close()  # FIN with the answer unread: the kernel resets later
            else:
                writer.transport.abort()  # RST at once
            # Pacing, not synchronisation: the answer mostly arrives on the dead socket.
            await asyncio.sleep(0.02)
        await wait_until_async(lambda: engine.status("t").channels == 0, 10, "channels released")
        s = engine.status("t")
        assert s.state is TunnelState.UP and s.reconnects == 0, s.last_error
        assert engine.tunnel("t").link is link and link.alive
        assert await echo_through(status.local_port, b"still fine", timeout=10) == b"still fine"
    finally:
        await engine.aclose()


async def test_database_back_clears_the_forward_error(sshd, client_keypair, engine_known_hosts,
                                                      echo_server):
    keys = _ready(sshd, engine_known_hosts, client_keypair)
    engine = TunnelEngine(engine_known_hosts, FAST)
    events = []
    try:
        status = await engine.start(_conn(sshd, ("127.0.0.1", echo_server.port)), keys)
        echo_server.stop()
        for _ in range(5):  # a client retrying: one event, not five
            await _expect_reset_fast(status.local_port)
        await wait_until_async(lambda: engine.status("t").last_error, 3, "error recorded")
        engine.subscribe(events.append)
        assert "connection refused" in engine.status("t").last_error
        echo_server.start()
        assert await echo_through(status.local_port, b"back", timeout=10) == b"back"
        s = await wait_until_async(
            lambda: engine.status("t").last_error is None and engine.status("t"), 3, "error cleared"
        )
        assert s.hint is None and s.state is TunnelState.UP
        assert any(e.last_error is None for e in events)
    finally:
        await engine.aclose()
