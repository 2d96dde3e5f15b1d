"""Finding 9 (issue 14): input nested thousands deep is an error message, not a crash.

A config.toml with arrays nested 100,000 deep made the parser raise RecursionError:
the CLI printed a traceback and the agent lost its tunnels. A request of 60,000 `[`
on the agent socket did the same to the JSON decoder. Now both are ordinary errors
(a ConfigError naming the file, a protocol error reply) and the agent keeps running.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import (
    add_ready_connection,
    cli,
    pg_query,
    status_json,
    up,
)
from tests.fixtures.agent import pid_alive
from tunnel_tui.agent import protocol
from tunnel_tui.agent.address import resolve
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core import paths
from tunnel_tui.core.errors import TunnelTuiError

DEPTH = 100_000


def test_deep_config_is_a_config_error_and_the_agent_keeps_its_tunnels(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None,
) -> None:
    setup = add_ready_connection("pg", "postgresql", postgres, sshd, client_keypair)
    port = up("pg")
    agent_pid = AgentClient().ping()["pid"]
    config = paths.config_path()
    good = config.read_bytes()
    config.write_bytes(b"schema = 1\nx = " + b"[" * DEPTH + b"]" * DEPTH + b"\n")

    for args in (["list"], ["status"], ["validate", "pg"]):
        out = cli(*args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert f"{config} is nested too deeply" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and "RecursionError" not in out.stderr
    with pytest.raises(TunnelTuiError, match="nested too deeply"):
        AgentClient().reload()

    assert pid_alive(agent_pid)
    assert asyncio.run(pg_query(port, setup.db, "SELECT 1")) == 1  # the tunnel held
    config.write_bytes(good)
    (status,) = status_json("pg")
    assert status["state"] == "up" and status["local_port"] == port


def test_deeply_nested_request_gets_a_protocol_error(agent_process: Any) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(os.fsencode(resolve().socket))
        stream = sock.makefile("rb")
        sock.sendall(b"[" * 60_000 + b"\n")
        reply = json.loads(stream.readline())
        assert reply["ok"] is False and "nested too deeply" in reply["error"]["message"], reply
        sock.sendall(protocol.encode(protocol.request("ping", 2)))  # same connection: still served
        assert json.loads(stream.readline())["ok"] is True
    assert pid_alive(agent_process.pid)
