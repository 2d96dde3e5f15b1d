"""Faults as a user of the CLI and the agent sees them (issue 10 items 1, 6, 12 through
the product's own path): `up` starts the agent, the bastion freezes, `status --json`
says reconnecting, then up again on the same port; the database stops and both
`status` and `validate` name its address and "connection refused"."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import asyncpg
import pytest

from tests.fixtures.canary import our_pids
from tests.fixtures.waiting import wait_until
from tests.reliability.helpers import REPO, listening_sockets
from tunnel_tui.core import config
from tunnel_tui.core.model import Keepalive

pytestmark = pytest.mark.slow

KA = Keepalive(0.5, 2)
DETECT = KA.interval * (KA.count_max + 1)


def _cli(
    env: dict[str, str], *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "tunnel_tui", *args], capture_output=True,
                         text=True, env=env, timeout=60, cwd=REPO)
    if expect is not None:
        assert out.returncode == expect, (args, out.returncode, out.stdout, out.stderr[-2000:])
    return out


def _status(env: dict[str, str], name: str) -> dict[str, object]:
    rows = json.loads(_cli(env, "status", name, "--json").stdout)
    assert len(rows) == 1
    return rows[0]


async def _pg(port: int, pg, sql: str = "select 1") -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user=pg.user,
                                 password=pg.password, database=pg.database, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close(timeout=2)


def test_agent_tunnel_through_a_frozen_bastion_and_a_stopped_database(
    isolated_env, secret_service, add_tunnel_connection, sshd_factory, postgres_factory,
    agent_reaper,
):
    pg = postgres_factory()
    server = sshd_factory()
    setup = add_tunnel_connection("pg", bastion=server, db=pg)
    with config.update() as cfg:  # small keepalive so the test takes seconds
        cfg.connections["pg"] = dataclasses.replace(cfg.connections["pg"], keepalive=KA)
    env = dict(secret_service.env, TUNNEL_TUI_HOME=str(isolated_env.home))
    _cli(env, "validate", "pg", "--accept-new-host-key")
    up = json.loads(_cli(env, "up", "pg", "--json").stdout)
    port = up["local_port"]
    assert up["state"] == "up"
    assert asyncio.run(_pg(port, pg)) == 1

    # 12: the agent listens on loopback only, on exactly the tunnel's port.
    agents = [pid for pid in our_pids(isolated_env.home)
              if b"tunnel_tui.agent" in open(f"/proc/{pid}/cmdline", "rb").read()]
    assert len(agents) == 1
    sockets = listening_sockets(agents[0])
    assert {p for _, p in sockets} == {port}
    assert {a for a, _ in sockets} <= {"127.0.0.1", "::1"}, sockets

    # 1: the whole bastion frozen (sessions and listener): reconnecting in time...
    frozen = [*server.session_pids(), server.pid]
    t0 = time.monotonic()
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        row = wait_until(lambda: (s := _status(env, "pg"))["state"] == "reconnecting" and s,
                         DETECT + 5, "status reconnecting")
        assert time.monotonic() - t0 <= DETECT + 3
        assert row["local_port"] == port and row["last_error"]
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    # ...and up after SIGCONT, same port, data flowing.
    row = wait_until(lambda: (s := _status(env, "pg"))["state"] == "up" and s, 20, "status up")
    assert row["local_port"] == port and int(row["reconnects"]) >= 1
    assert asyncio.run(_pg(port, pg, "select 2")) == 2

    # 6: the database stopped: the tunnel stays up, both commands say why a client failed.
    pg.stop()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncio.TimeoutError)):
        asyncio.run(_pg(port, pg))
    row = wait_until(lambda: (s := _status(env, "pg"))["last_error"] and s, 5, "last_error")
    assert row["state"] == "up"
    address = f"{pg.host}:{pg.port}"
    assert address in str(row["last_error"]) and "connection refused" in str(row["last_error"])
    steps = [json.loads(line) for line in
             _cli(env, "validate", "pg", "--json", expect=1).stdout.splitlines()]
    failed = [s for s in steps if s["status"] == "fail"]
    assert len(failed) == 1, steps
    text = f"{failed[0]['detail']} {failed[0].get('hint') or ''}"
    assert address in text and "connection refused" in text.lower(), failed[0]
    pg.start()
    assert asyncio.run(_pg(port, pg, "select 3")) == 3
    _cli(env, "down", "pg")
    assert _status(env, "pg")["state"] == "down"
    assert setup.name == "pg"


def test_cli_permanent_failures_make_exactly_one_attempt_and_keep_known_hosts(
    isolated_env, secret_service, add_tunnel_connection, sshd_factory, agent_reaper,
):
    from tests.reliability.helpers import connection_attempts
    from tunnel_tui.core.paths import known_hosts_path

    server = sshd_factory()
    add_tunnel_connection("pg", bastion=server, db_url="postgresql://app@127.0.0.1:9/app",
                          authorize=False)
    env = dict(secret_service.env, TUNNEL_TUI_HOME=str(isolated_env.home))

    # Rejected key: validate trusts the host key (consent given) then fails at ssh-auth.
    steps = [json.loads(line) for line in
             _cli(env, "validate", "pg", "--json", "--accept-new-host-key",
                  expect=1).stdout.splitlines()]
    assert [s["step"] for s in steps if s["status"] == "fail"] == ["ssh-auth"]
    assert connection_attempts(server) == 1
    out = _cli(env, "up", "pg", expect=1)
    assert "authorized_keys" in out.stderr
    time.sleep(1.5)  # a retry loop in the agent would show up in the log by now
    assert connection_attempts(server) == 2  # one for validate, one for up
    assert _status(env, "pg")["state"] in ("failed", "down")

    # Host key changed after trust: refused with a MITM warning, even with consent flags.
    trusted = known_hosts_path().read_bytes()
    server.restart(new_host_key=True)
    before = connection_attempts(server)
    for args in (("validate", "pg", "--accept-new-host-key"), ("up", "pg")):
        out = _cli(env, *args, expect=1)
        text = (out.stdout + out.stderr).lower()
        assert "man-in-the-middle" in text, out
        assert server.host_fingerprint.lower() in text
    time.sleep(1.5)  # the behaviour is an absence: no retry shows up in the log meanwhile
    assert connection_attempts(server) - before == 2
    assert known_hosts_path().read_bytes() == trusted


def test_agent_frozen_past_the_bastions_clientalive_window_reconnects_after_sigcont(
    isolated_env, secret_service, add_tunnel_connection, sshd_factory, postgres_factory,
    agent_reaper,
):
    """A laptop suspended (here: the agent SIGSTOPped) longer than the bastion tolerates:
    the bastion dropped the session; after resuming the tunnel comes back by itself."""
    pg = postgres_factory()
    server = sshd_factory(options={"ClientAliveInterval": "1", "ClientAliveCountMax": "1"})
    add_tunnel_connection("pg", bastion=server, db=pg)
    with config.update() as cfg:  # our own keepalive slower than the server's
        cfg.connections["pg"] = dataclasses.replace(cfg.connections["pg"],
                                                    keepalive=Keepalive(5.0, 2))
    env = dict(secret_service.env, TUNNEL_TUI_HOME=str(isolated_env.home))
    _cli(env, "validate", "pg", "--accept-new-host-key")
    port = json.loads(_cli(env, "up", "pg", "--json").stdout)["local_port"]
    assert asyncio.run(_pg(port, pg)) == 1
    agent = next(pid for pid in our_pids(isolated_env.home)
                 if b"tunnel_tui.agent" in open(f"/proc/{pid}/cmdline", "rb").read())
    sessions = server.connection_pids()
    os.kill(agent, signal.SIGSTOP)
    try:
        wait_until(lambda: not set(sessions) & set(server.connection_pids()), 10,
                   "the bastion dropping the frozen agent's session")
    finally:
        os.kill(agent, signal.SIGCONT)
    row = wait_until(lambda: (s := _status(env, "pg"))["state"] == "up"
                     and int(s["reconnects"]) >= 1 and s, 20, "up again after resume")
    assert row["local_port"] == port
    assert asyncio.run(_pg(port, pg, "select 5")) == 5


def test_validate_of_a_hung_database_ends_with_a_timeout_not_a_hang(
    isolated_env, secret_service, add_tunnel_connection, sshd_factory, postgres_factory,
):
    """A database that accepts TCP and then never answers (SIGSTOPped): validate ends
    with one failed DB step that says it timed out (the hung bastion case is in
    test_tunnel_faults.py, with a small connect timeout)."""
    pg = postgres_factory()
    add_tunnel_connection("hungdb", bastion=sshd_factory(), db=pg)
    env = dict(secret_service.env, TUNNEL_TUI_HOME=str(isolated_env.home))
    _cli(env, "validate", "hungdb", "--accept-new-host-key")
    assert pg.pid is not None
    os.kill(pg.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        out = _cli(env, "validate", "hungdb", "--json", expect=1)
        elapsed = time.monotonic() - t0
    finally:
        os.kill(pg.pid, signal.SIGCONT)
    assert elapsed < 25, elapsed  # the probe's 10 s DB timeout, plus start-up
    steps = [json.loads(line) for line in out.stdout.splitlines()]
    failed = [s for s in steps if s["status"] == "fail"]
    assert [s["step"] for s in failed] in (["db-tls"], ["db-auth"], ["query"]), steps
    text = f"{failed[0]['detail']} {failed[0].get('hint')}".lower()
    assert "timed out" in text or "timeout" in text, failed
    assert f"{pg.host}:" in text


async def test_a_hung_database_step_names_the_database_and_says_timed_out(
    isolated_env, secret_service, add_tunnel_connection, sshd_factory, postgres_factory,
):
    from tunnel_tui import validate
    from tunnel_tui.core.known_hosts import KnownHosts

    pg = postgres_factory()
    server = sshd_factory()
    setup = add_tunnel_connection("hungdb", bastion=server, db=pg)
    KnownHosts().add(server.host, server.port, server.host_public_key)
    assert pg.pid is not None
    os.kill(pg.pid, signal.SIGSTOP)
    try:
        steps = [s async for s in validate.run(setup.connection, setup.catalog, db_timeout=1.0)]
    finally:
        os.kill(pg.pid, signal.SIGCONT)
    failed = [s for s in steps if s.status.value == "fail"]
    assert len(failed) == 1, steps
    text = f"{failed[0].detail} {failed[0].hint or ''}"
    assert f"{pg.host}:{pg.port}" in text, text
    assert "timed out" in text.lower(), text
    assert "Error" not in failed[0].detail, text  # no Python exception class names
