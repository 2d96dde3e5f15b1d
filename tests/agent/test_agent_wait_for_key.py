"""The agent waits for the key (`up NAME --wait-for-key MINUTES`): against a real
OpenSSH sshd bastion and real PostgreSQL behind it, driven through the real CLI and a
real agent process. The key is "pasted" by appending it to the bastion user's
authorized_keys while the agent waits; nobody in the test retries anything.

The agent's longest pause between attempts is a setting (TUNNEL_TUI_KEY_WAIT_CAP):
half a second here, so each wait ends within seconds of what it waits for.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import (
    Setup,
    add_connection,
    cli,
    no_keyring_env,
    pg_query,
    status_json,
    status_of,
    trust_host,
    wait_for_state,
)
from tests.fixtures.agent import reap_home_agent, start_agent_process
from tests.fixtures.waiting import wait_until
from tunnel_tui.actions import waiting
from tunnel_tui.actions.session import Session
from tunnel_tui.agent import wait_records
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core import paths
from tunnel_tui.core.catalog import Catalog, ImportKey
from tunnel_tui.core.secret import Secret

WAITING_LINE = re.compile(
    r"^(?P<name>\S+) waiting for its key on (?P<bastion>\S+) until (?P<hh>\d\d):(?P<mm>\d\d)$"
)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents started from this test (by `up`, or by the fixture) retry every <= 0.5 s."""
    monkeypatch.setenv("TUNNEL_TUI_KEY_WAIT_CAP", "0.5")


@pytest.fixture
def pending(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> Setup:
    """A connection whose host key is trusted but whose key is not on the bastion yet."""
    trust_host(sshd)
    return add_connection("pg", "postgresql", postgres, sshd, client_keypair)


def key_line(name: str = "pg") -> str:
    result = cli("key", "show", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def until_of(status: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(status["wait_until"].replace("Z", "+00:00"))


def test_key_arrives_while_waiting_and_the_tunnel_comes_up(pending: Setup) -> None:
    started = datetime.now(UTC)
    result = cli("up", "pg", "--wait-for-key", "5")
    assert result.returncode == 0, result.stderr
    match = WAITING_LINE.match(result.stdout.strip())
    assert match, result.stdout
    assert match["bastion"] == f"{pending.sshd.user}@127.0.0.1:{pending.sshd.port}"

    # From a plain SSH login (no D-Bus, no keyring): waiting, with its deadline.
    waiting_now = status_of()
    assert waiting_now["state"] == "waiting-for-key"
    until = until_of(waiting_now)
    assert timedelta(minutes=4, seconds=50) < until - started < timedelta(minutes=5, seconds=10)
    local = until.astimezone()
    assert (match["hh"], match["mm"]) == (f"{local:%H}", f"{local:%M}")
    assert "authorized_keys" in (waiting_now["hint"] or "")
    table = cli("status", env=no_keyring_env())
    assert re.search(r"^pg\s+waiting-for-key\s+[45] min left\s", table.stdout, re.M), table.stdout
    assert "authorized_keys" in table.stdout  # the line to add, under the table

    pending.sshd.authorize(key_line())
    up = wait_for_state("up")
    assert up["wait_until"] is None and up["last_error"] is None
    assert asyncio.run(pg_query(up["local_port"], pending.db, "SELECT 1")) == 1
    assert Catalog().get("pg").local_port == up["local_port"]
    assert wait_records.load(paths.home_dir()) == {}


def test_every_status_object_has_wait_until(pending: Setup) -> None:
    # No agent: configured rows; with one: the same field, null when not waiting.
    assert [s["wait_until"] for s in status_json()] == [None]
    result = cli("up", "pg", "--wait-for-key", "1", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "waiting-for-key" and data["wait_until"].endswith("Z")
    assert cli("down", "pg").returncode == 0
    assert [s["wait_until"] for s in status_json()] == [None]


def test_the_window_ends_failed_naming_the_line_to_add(pending: Setup) -> None:
    # 1-60 minutes on the command line; the agent's op takes seconds (3 s here).
    status = waiting.up_wait_for_key(Session(), "pg", seconds=3)
    assert status.state.value == "waiting-for-key"
    failed = wait_for_state("failed")
    assert "not accepted" in failed["last_error"]
    assert key_line() in failed["last_error"]
    assert f"~{pending.sshd.user}/.ssh/authorized_keys" in failed["last_error"]
    assert failed["hint"] and "--wait-for-key" in failed["hint"]
    assert failed["wait_until"] is None
    assert wait_records.load(paths.home_dir()) == {}


def test_a_changed_host_key_ends_the_wait_early(pending: Setup) -> None:
    assert cli("up", "pg", "--wait-for-key", "30").returncode == 0
    assert status_of()["state"] == "waiting-for-key"
    pending.sshd.restart(new_host_key=True)
    failed = wait_for_state("failed")
    assert "stopped waiting" in failed["last_error"]
    assert "HOST KEY CHANGED" in failed["last_error"]
    assert "hosts forget" in failed["hint"]
    assert wait_records.load(paths.home_dir()) == {}


def test_down_and_remove_end_the_wait(pending: Setup, client_keypair: Any) -> None:
    assert cli("up", "pg", "--wait-for-key", "30").returncode == 0
    result = cli("down", "pg")
    assert result.returncode == 0 and result.stdout.strip() == "pg down"
    assert status_of()["state"] == "down"
    assert wait_records.load(paths.home_dir()) == {}
    log = paths.log_dir() / "agent.log"
    assert "stopped waiting for its key (tunnel-tui down pg)" in log.read_text()

    assert cli("up", "pg", "--wait-for-key", "30").returncode == 0
    # Removed from the config by another process (`remove` itself takes it down first):
    # the agent sees the config change and stops waiting, saying why.
    Catalog().remove("pg")
    wait_until(lambda: wait_records.load(paths.home_dir()) == {}, 10, "the wait record gone")
    wait_until(
        lambda: "was removed from the configuration while waiting" in log.read_text(),
        10, "the agent saying why it stopped",
    )
    # Authorizing now brings nothing up: nobody waits any more.
    pending.sshd.authorize(client_keypair.public_line)
    assert status_json() == []


def test_an_untrusted_host_key_is_refused_naming_its_fingerprint(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    add_connection("pg", "postgresql", postgres, sshd, client_keypair)
    result = cli("up", "pg", "--wait-for-key", "5")
    assert result.returncode == 1, result.stdout
    assert sshd.host_fingerprint in result.stderr
    assert f"--accept-host-key {sshd.host_fingerprint}" in result.stderr
    assert status_of()["state"] != "waiting-for-key"
    # With the fingerprint the user checked, it waits (and the key is trusted now).
    result = cli("up", "pg", "--wait-for-key", "5", "--accept-host-key", sshd.host_fingerprint)
    assert result.returncode == 0, result.stderr
    assert WAITING_LINE.match(result.stdout.strip())
    assert sshd.host_public_key.split()[1] in paths.known_hosts_path().read_text()


def test_bad_minutes_is_bad_input(pending: Setup) -> None:
    for value in ("0", "61", "-3"):
        result = cli("up", "pg", "--wait-for-key", value)
        assert result.returncode == 2, result.stderr
        assert "between 1 and 60 minutes" in result.stderr


def test_add_with_wait_for_key_then_the_agent_brings_it_up(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    db = postgres
    result = cli(
        "add", "pg", "--db", f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}",
        "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}", "--db-password-stdin",
        "--wait-for-key", "10", "--accept-host-key", sshd.host_fingerprint,
        stdin=db.password + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert WAITING_LINE.match(lines[-1]), result.stdout
    line = next(item for item in lines if item.startswith("ssh-ed25519 "))
    assert "the agent brings pg up once it is in" in result.stdout
    sshd.authorize(line)
    up = wait_for_state("up")
    assert up["last_error"] is None
    assert asyncio.run(pg_query(up["local_port"], db, "SELECT 1")) == 1


def test_add_with_wait_on_first_contact_needs_host_key_consent(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    db = postgres
    result = cli(
        "add", "pg", "--db", f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}",
        "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}", "--wait-for-key", "10",
    )  # fmt: skip
    assert result.returncode == 1
    assert f"--accept-host-key {sshd.host_fingerprint}" in result.stderr


def test_the_database_refusing_the_login_leaves_the_tunnel_up_with_the_error(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    trust_host(sshd)
    Catalog().add(
        "pg",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode()),
        db_password=Secret("wrong"),
    )
    assert cli("up", "pg", "--wait-for-key", "5").returncode == 0
    sshd.authorize(client_keypair.public_line)
    up = wait_for_state("up")
    assert up["last_error"] and "password" in up["last_error"].lower()
    assert up["hint"]
    # The tunnel itself works: with the right password the query runs through it.
    assert asyncio.run(pg_query(up["local_port"], postgres, "SELECT 1")) == 1


def test_agent_restart_resumes_the_wait_with_its_original_deadline(pending: Setup) -> None:
    home = paths.home_dir()
    assert cli("up", "pg", "--wait-for-key", "30").returncode == 0
    before = status_of()
    (record,) = wait_records.load(home).values()
    assert record.until == until_of(before)
    assert oct(wait_records.path(home).stat().st_mode & 0o777) == "0o600"

    reap_home_agent(home)  # SIGTERM by pid: tunnels close, the record stays
    assert wait_records.load(home)["key:pg"].until == record.until
    agent = start_agent_process(home)
    try:
        resumed = wait_for_state("waiting-for-key", 10)
        assert until_of(resumed) == record.until
        assert AgentClient(home).ping()["pid"] == agent.pid
        pending.sshd.authorize(key_line())
        up = wait_for_state("up")
        assert asyncio.run(pg_query(up["local_port"], pending.db, "SELECT 1")) == 1
    finally:
        agent.stop()


def test_an_unknown_bastion_user_keeps_waiting_like_an_unknown_key(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    """sshd answers a user it does not know exactly like a key it does not know: the
    agent cannot tell them apart, so both keep waiting (until someone fixes it)."""
    trust_host(sshd)
    Catalog().add(
        "pg",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://no-such-user-{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode()),
    )
    sshd.authorize(client_keypair.public_line)  # the key is there, for another user
    assert cli("up", "pg", "--wait-for-key", "5").returncode == 0
    waiting = status_of()
    assert waiting["state"] == "waiting-for-key"
    assert "does not accept the key yet" in waiting["last_error"]
    # Fixing the user (an edit the agent picks up) lets the very same wait succeed.
    result = cli("edit", "pg", "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}")
    assert result.returncode == 0, result.stderr
    up = wait_for_state("up")
    assert asyncio.run(pg_query(up["local_port"], postgres, "SELECT 1")) == 1


def test_the_desktop_is_told_name_is_up(
    pending: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The notification's command line (DESIGN: no desktop on CI, so the boundary is
    tested): a `notify-send` on PATH that records its arguments, as the agent runs it."""
    assert os.environ.get("DBUS_SESSION_BUS_ADDRESS")  # the secret_service fixture's bus
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "notified"
    script = bindir / "notify-send"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {record}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    assert cli("up", "pg", "--wait-for-key", "5").returncode == 0
    pending.sshd.authorize(key_line())
    wait_until(lambda: record.exists() and "is up" in record.read_text(), 20,
               "the notification")
    args = record.read_text().splitlines()
    assert args[:3] == ["--app-name=tunnel-tui", "--urgency=normal", "tunnel-tui: pg is up"]
    assert args[3].startswith("127.0.0.1:")


def test_a_restarted_agent_without_a_keyring_waits_for_the_secret_then_the_key(
    pending: Setup,
) -> None:
    home = paths.home_dir()
    assert cli("up", "pg", "--wait-for-key", "30").returncode == 0
    until = until_of(status_of())
    reap_home_agent(home)
    # The new agent runs where no keyring answers (a plain SSH login, say).
    agent = start_agent_process(home, env=no_keyring_env())
    try:
        stuck = wait_for_state("waiting-for-secret", 15)
        assert until_of(stuck) == until
        assert "tunnel-tui up pg" in stuck["hint"] and "vault unlock" in stuck["hint"]
        # `up` from a terminal with the keyring hands the key over; the wait goes on.
        result = cli("up", "pg")
        assert result.returncode == 0, result.stderr
        assert WAITING_LINE.match(result.stdout.strip()), result.stdout
        assert status_of()["state"] == "waiting-for-key"
        pending.sshd.authorize(key_line())
        up = wait_for_state("up")
        assert asyncio.run(pg_query(up["local_port"], pending.db, "SELECT 1")) == 1
    finally:
        agent.stop()


def test_a_recorded_wait_and_an_unreadable_config_do_not_stop_the_agent_starting(
    isolated_env: Any, agent_reaper: None
) -> None:
    home = paths.home_dir()
    until = datetime.now(UTC) + timedelta(minutes=10)
    wait_records.put(home, wait_records.WaitRecord("pg", until))
    paths.config_path(home).write_text("[connections.pg\n")  # broken TOML
    paths.config_path(home).chmod(0o600)
    agent = start_agent_process(home)
    try:
        assert AgentClient(home).ping()["pid"] == agent.pid
        assert "waits not resumed" in agent.log_text()
        assert wait_records.load(home)["key:pg"].until == until  # kept for a later start
    finally:
        agent.stop()
