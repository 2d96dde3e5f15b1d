"""A key that lives only in the caller's ssh-agent, through the real agent process, a
real OpenSSH ssh-agent, sshd and PostgreSQL: `up` from a login with the agent, SELECT
1; the ssh-agent goes away while the tunnel is up and the SSH link drops: the tunnel
waits in `waiting-for-secret` with the hint (no retry loop); `up` from a terminal with
an agent brings it back."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from tests.agent.test_agent_tunnels import (
    add_agent_key_connection,
    cli,
    no_keyring_env,
    pg_query,
    refused,
    status_json,
    trust_host,
    up_in,
    wait_for_state,
)
from tests.fixtures.ssh_agent import running_agent


def login_with(socket: str) -> dict[str, str]:
    """An SSH login to the workstation: no D-Bus, no keyring, only its ssh-agent."""
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["SSH_AUTH_SOCK"] = socket
    return env


def test_agent_key_up_select_then_agent_gone_waits_for_secret_then_up_again(
    sshd_factory: Any, postgres: Any, agent_reaper: None, key_file: Any,
) -> None:
    server = sshd_factory()
    trust_host(server)
    path, public = key_file
    server.authorize(public)
    add_agent_key_connection("sa", postgres, server, public)

    with running_agent() as first:
        first.add(path)
        port = up_in("sa", login_with(first.socket))
        assert asyncio.run(pg_query(port, postgres, "SELECT 1")) == 1
    # The terminal (and its ssh-agent) is gone; then the bastion drops the connection.
    server.restart()

    status = wait_for_state("waiting-for-secret", name="sa")
    assert status["hint"] == (f"the ssh-agent at {first.socket} is gone; run "
                              "`tunnel-tui up sa` from a terminal with your agent")
    assert first.socket in status["last_error"]
    table = cli("status", env=no_keyring_env()).stdout  # a plain SSH login reads it too
    assert "waiting-for-secret" in table and "`tunnel-tui up sa`" in table
    assert refused(port)  # nothing half-up on the local port
    # No retry loop: within this window the state and its error stay as they are.
    time.sleep(1.0)
    (later,) = status_json("sa")
    assert (later["state"], later["since"], later["last_error"]) == (
        "waiting-for-secret", status["since"], status["last_error"])

    with running_agent() as second:
        second.add(path)
        again = up_in("sa", login_with(second.socket))
        assert again == port  # the saved local port
        assert asyncio.run(pg_query(again, postgres, "SELECT 1")) == 1
        (back,) = status_json("sa")
        assert back["state"] == "up" and back["hint"] is None


def test_autostart_with_an_agent_key_waits_for_a_terminal_with_the_agent(
    sshd: Any, postgres: Any, ssh_agent: Any, agent_reaper: None, key_file: Any,
    monkeypatch: Any,
) -> None:
    """The agent starts on its own (login, systemd): nobody gave it an ssh-agent
    socket, so an autostart tunnel whose key lives in one waits for a terminal."""
    from tests.fixtures.agent import start_agent_process
    from tunnel_tui.core import paths

    monkeypatch.setenv("TUNNEL_TUI_AUTOSTART_CAP", "0.5")
    trust_host(sshd)
    path, public = key_file
    sshd.authorize(public)
    ssh_agent.add(path)
    add_agent_key_connection("auto", postgres, sshd, public, autostart=True)
    agent = start_agent_process(paths.home_dir(), env=no_keyring_env())
    try:
        status = wait_for_state("waiting-for-secret", name="auto")
        assert status["hint"] == "tunnel-tui up auto from a terminal with your ssh-agent"
        assert "SSH_AUTH_SOCK" in status["last_error"]
        port = up_in("auto", login_with(ssh_agent.socket))
        assert asyncio.run(pg_query(port, postgres, "SELECT 1")) == 1
    finally:
        agent.stop()
