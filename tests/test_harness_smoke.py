"""The test harness works: real servers, reached the way users reach them.

OpenSSH `ssh -N -L` through the sshd fixture to the private PostgreSQL and MariaDB,
a 3 KB keyring round trip through the real Secret Service, key revocation seen by
OpenSSH, and the in-process asyncssh bastion forwarding to a TCP echo server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomysql
import asyncpg
import asyncssh
import keyring.backends.SecretService
import keyring.errors
import pytest

from tests.fixtures.binaries import require_binary
from tests.fixtures.ports import free_port
from tests.fixtures.sshd import ClientKeypair, SshdServer


@contextlib.contextmanager
def ssh_forward(
    sshd: SshdServer, key: ClientKeypair, target_port: int, timeout: float = 10.0
) -> Iterator[int]:
    """`ssh -N -L 127.0.0.1:<free>:127.0.0.1:<target_port>`; yields the local port once it
    accepts connections; stops ssh by its PID."""
    ssh = require_binary("ssh", "openssh-client")
    local = free_port()
    args = [ssh, "-N", "-o", "ExitOnForwardFailure=yes"]
    args += ["-L", f"127.0.0.1:{local}:127.0.0.1:{target_port}"]
    proc = subprocess.Popen(
        [*args, *sshd.ssh_args(key.path, None)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                assert proc.stderr is not None
                pytest.fail(f"ssh exited {proc.returncode}: {proc.stderr.read().decode()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), 1):
                break
            assert time.monotonic() < deadline, "ssh -L never listened"
            time.sleep(0.02)
        yield local
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()


def ssh_run(sshd: SshdServer, key: ClientKeypair, command: str) -> subprocess.CompletedProcess[str]:
    ssh = require_binary("ssh", "openssh-client")
    return subprocess.run(
        [ssh, *sshd.ssh_args(key.path, None), command],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_isolated_env_hides_the_developer_session(isolated_env) -> None:
    assert os.environ["TUNNEL_TUI_HOME"] == str(isolated_env.home)
    assert os.environ["HOME"] == str(isolated_env.user_home)
    assert not {"DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "SSH_AUTH_SOCK"} & set(os.environ)
    # The agent's socket must fit in sun_path (108 bytes) with room to spare.
    assert len(str(isolated_env.home / "run" / "agent.sock")) < 60


async def test_openssh_tunnel_to_postgres(sshd, client_keypair, postgres) -> None:
    sshd.authorize(client_keypair.public_line)
    with ssh_forward(sshd, client_keypair, postgres.port) as local:
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=local,
            user=postgres.user,
            password=postgres.password,
            database=postgres.database,
            ssl=False,
            timeout=10,
        )
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()


async def test_openssh_tunnel_to_mariadb(sshd, client_keypair, mariadb) -> None:
    sshd.authorize(client_keypair.public_line)
    with ssh_forward(sshd, client_keypair, mariadb.port) as local:
        conn = await aiomysql.connect(
            host="127.0.0.1",
            port=local,
            user=mariadb.user,
            password=mariadb.password,
            db=mariadb.database,
            connect_timeout=10,
        )
        try:
            async with conn.cursor() as cur:
                await cur.execute("SELECT 1")
                assert await cur.fetchone() == (1,)
        finally:
            conn.close()


async def test_postgres_with_tls_verifies_against_its_ca(postgres_factory) -> None:
    pg = postgres_factory(tls=True)
    context = ssl.create_default_context(cafile=str(pg.ca_cert_path))
    conn = await asyncpg.connect(
        host=pg.host,
        port=pg.port,
        user=pg.user,
        password=pg.password,
        database=pg.database,
        ssl=context,
        timeout=10,
    )
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()
    pg.stop()
    with pytest.raises(OSError):
        await asyncpg.connect(host=pg.host, port=pg.port, user=pg.user, timeout=5)


def test_keyring_round_trips_3kb_through_real_secret_service(secret_service) -> None:
    backend = keyring.backends.SecretService.Keyring()
    value = "s3cr3t-" + "x" * 3000
    backend.set_password("tunnel-tui", "key:smoke", value)
    assert keyring.backends.SecretService.Keyring().get_password("tunnel-tui", "key:smoke") == value
    backend.delete_password("tunnel-tui", "key:smoke")
    assert backend.get_password("tunnel-tui", "key:smoke") is None


def test_locked_keyring_refuses_without_blocking(locked_secret_service) -> None:
    backend = keyring.backends.SecretService.Keyring()
    started = time.monotonic()
    with pytest.raises(keyring.errors.KeyringLocked):
        backend.get_password("tunnel-tui", "anything")
    assert time.monotonic() - started < 5


def test_openssh_login_rejected_once_key_is_deauthorized(sshd, client_keypair) -> None:
    sshd.authorize(client_keypair.public_line, options='from="127.0.0.1"')
    ok = ssh_run(sshd, client_keypair, "id -un")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == sshd.user
    sshd.deauthorize(client_keypair.public_line)
    denied = ssh_run(sshd, client_keypair, "id -un")
    assert denied.returncode == 255
    assert "Permission denied" in denied.stderr


def test_sshd_restart_with_new_host_key_is_caught_by_openssh(sshd_factory, client_keypair) -> None:
    server = sshd_factory(options={"ClientAliveInterval": "1"}, strict_modes=True)
    server.authorize(client_keypair.public_line)
    old_known_hosts = Path(server.workdir) / "known_hosts_before"
    old_known_hosts.write_text(server.known_hosts_line() + "\n")
    port, old_fingerprint = server.port, server.host_fingerprint
    server.restart(new_host_key=True)
    assert (server.port, server.running) == (port, True)
    assert server.host_fingerprint != old_fingerprint
    ssh = require_binary("ssh", "openssh-client")
    mitm = subprocess.run(
        [ssh, *server.ssh_args(client_keypair.path, old_known_hosts), "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert mitm.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in mitm.stderr
    assert ssh_run(server, client_keypair, "true").returncode == 0


async def test_asyncssh_bastion_forwards_to_echo_server(asyncssh_bastion, echo_server) -> None:
    bastion = asyncssh_bastion
    async with asyncssh.connect(
        bastion.host,
        bastion.port,
        username=bastion.user,
        known_hosts=asyncssh.import_known_hosts(bastion.known_hosts_line()),
        client_keys=[asyncssh.import_private_key(bastion.client_private_pem)],
    ) as conn:
        reader, writer = await conn.open_connection("127.0.0.1", echo_server.port)
        writer.write(b"ping through the bastion")
        assert await reader.readexactly(24) == b"ping through the bastion"
        writer.close()
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("192.0.2.1", 80)  # not loopback: refused
