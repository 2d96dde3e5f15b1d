"""Secrets come from the caller (issue 13, DESIGN.md): every CLI command runs in its
own login session — its own D-Bus with the same unlocked keyring, or no D-Bus at all
(an SSH login) — on one HOME, against a real sshd bastion and a real PostgreSQL. The
agent outlives the session it was started from; `up` must still work."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import cli, pg_query, trust_host, up_in
from tests.fixtures.secret_service import KeyringSessions
from tunnel_tui.actions import tunnels
from tunnel_tui.actions.session import Session
from tunnel_tui.agent.client import AgentClient


@pytest.fixture
def bastion(sshd: Any, agent_reaper: None) -> Any:
    trust_host(sshd)
    return sshd


def add(name: str, env: dict[str, str], postgres: Any, sshd: Any, *extra: str) -> dict[str, Any]:
    result = cli(
        "add", name, "--json",
        "--db", f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        *extra, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    if data.get("authorized_keys_line"):
        sshd.authorize(data["authorized_keys_line"])
    return data


def agent_bus(pid: int) -> str | None:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"DBUS_SESSION_BUS_ADDRESS="):
            return entry.split(b"=", 1)[1].decode()
    return None


def held(name: str) -> dict[str, bool]:
    return tunnels.secrets_held(Session(), name).keys


def test_up_from_a_new_session_after_the_agents_session_ended(
    keyring_sessions: KeyringSessions, bastion: Any, postgres: Any
) -> None:
    for name in ("a", "b"):
        with keyring_sessions.session() as env:
            add(name, env, postgres, bastion)
    with keyring_sessions.session() as env:
        port_a = up_in("a", env)  # starts the agent, inside this session
    agent_pid = AgentClient().ping()["pid"]
    bus = agent_bus(agent_pid)
    assert bus and bus.startswith("unix:path=")
    assert not os.path.exists(bus.removeprefix("unix:path="))  # the agent's bus is gone

    with keyring_sessions.session() as env:
        port_b = up_in("b", env)  # the key comes from this session's keyring
    assert AgentClient().ping()["pid"] == agent_pid
    assert asyncio.run(pg_query(port_a, postgres, "SELECT 1")) == 1
    assert asyncio.run(pg_query(port_b, postgres, "SELECT 2")) == 2
    log = (Path(os.environ["TUNNEL_TUI_HOME"]) / "logs" / "agent.log").read_text()
    assert "PRIVATE KEY" not in log


def test_agent_started_from_an_ssh_login_then_up_from_a_keyring_session(
    keyring_sessions: KeyringSessions, bastion: Any, postgres: Any
) -> None:
    with keyring_sessions.session() as env:
        add("a", env, postgres, bastion)
    ssh_login = keyring_sessions.no_dbus_env()

    # Nobody has the key: no keyring and no vault here, none in the agent either.
    refused = cli("up", "a", env=ssh_login)
    assert refused.returncode == 1
    assert refused.stdout == ""
    error, hint = refused.stderr.splitlines()
    assert error.startswith("error: a needs its private key and nobody has it: ")
    assert "in this terminal, no usable keyring: no D-Bus session" in error
    assert "in the agent, no usable keyring" in error
    # The key is in the desktop keyring (there is no vault): only that session reaches it.
    assert hint == "hint: in a terminal where the keyring works (your desktop): tunnel-tui up a"
    agent_pid = AgentClient().ping()["pid"]  # that `up` started the agent, with no D-Bus
    assert agent_bus(agent_pid) is None

    with keyring_sessions.session() as env:
        port = up_in("a", env)
    assert AgentClient().ping()["pid"] == agent_pid
    assert asyncio.run(pg_query(port, postgres, "SELECT 3")) == 3


def test_held_keys_serve_later_ups_and_down_drops_them(
    keyring_sessions: KeyringSessions, bastion: Any, postgres: Any
) -> None:
    with keyring_sessions.session() as env:
        add("a", env, postgres, bastion)
        add("c", env, postgres, bastion, "--use-key", "a")  # the key named after a
        port_a = up_in("a", env)
    key_id = next(iter(held("a")))
    assert held("a") == {key_id: True} and held("c") == {key_id: True}

    # From an SSH login with no keyring: the agent already holds c's key (a uses it).
    ssh_login = keyring_sessions.no_dbus_env()
    port_c = up_in("c", ssh_login)
    assert asyncio.run(pg_query(port_c, postgres, "SELECT 4")) == 4

    assert cli("down", "a", env=ssh_login).returncode == 0
    assert held("c") == {key_id: True}  # c still uses it
    assert asyncio.run(pg_query(port_c, postgres, "SELECT 5")) == 5
    assert cli("down", "c", env=ssh_login).returncode == 0
    assert held("a") == {key_id: False}  # no live tunnel needs it: dropped

    again = cli("up", "a", env=ssh_login)  # so an SSH login cannot bring it back
    assert again.returncode == 1 and "nobody has it" in again.stderr
    with keyring_sessions.session() as env:
        assert up_in("a", env) == port_a


def test_the_apps_up_takes_the_same_path(
    keyring_sessions: KeyringSessions,
    bastion: Any,
    postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tunnel_tui.ui.services import RealServices

    for name in ("a", "b"):
        with keyring_sessions.session() as env:
            add(name, env, postgres, bastion)
    with keyring_sessions.session() as env:
        up_in("a", env)  # the agent's session ends with this block
    with keyring_sessions.session() as env:
        # The app runs in this new login session: its keyring, its D-Bus.
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", env["DBUS_SESSION_BUS_ADDRESS"])
        status = asyncio.run(RealServices().up("b"))
        assert held("b") == {k: True for k in held("b")}
    assert status.name == "b" and status.local_port
    assert asyncio.run(pg_query(status.local_port, postgres, "SELECT 6")) == 6
    asyncio.run(RealServices().down("b"))
    assert not any(held("b").values())


def test_a_key_in_the_callers_ssh_agent_goes_with_up(
    ssh_agent: Any, bastion: Any, postgres: Any, agent_process: Any, key_file: Any
) -> None:
    from tests.agent.test_agent_tunnels import add_agent_key_connection

    path, public = key_file
    ssh_agent.add(path)
    bastion.authorize(public)
    add_agent_key_connection("sa", postgres, bastion, public)
    # The agent was started without any ssh-agent; this SSH login has one (and no
    # keyring: a key in the ssh-agent never needs it).
    assert b"SSH_AUTH_SOCK=" not in Path(f"/proc/{agent_process.pid}/environ").read_bytes()
    login = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    login["SSH_AUTH_SOCK"] = ssh_agent.socket
    login["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    port = up_in("sa", login)
    assert asyncio.run(pg_query(port, postgres, "SELECT 7")) == 7
