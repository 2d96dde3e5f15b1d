"""The agent runs its tunnels on uvloop by default (TUNNEL_TUI_UVLOOP=0 opts out).

A real agent process, a real OpenSSH bastion: data flows both ways, counters grow,
a forward to a closed port resets its client and names the cause, under the
default loop and under the opt-out alike.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.agent import start_agent_process
from tests.fixtures.waiting import wait_until
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core import paths
from tunnel_tui.core.atomic import write_private_file
from tunnel_tui.core.catalog import Catalog, ImportKey, ReuseKey
from tunnel_tui.core.status import TunnelState

pytest.importorskip("uvloop")


def _uses_uvloop(pid: int) -> bool:
    return "uvloop" in Path(f"/proc/{pid}/maps").read_text()


def _echo_round_trip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        chunks, got = [], 0
        while got < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk, "the tunnel closed before echoing everything"
            chunks.append(chunk)
            got += len(chunk)
        sender.join(20)
    return b"".join(chunks)


@pytest.mark.parametrize("opt_out", [False, True], ids=["default-uvloop", "UVLOOP=0"])
def test_agent_tunnel_under_its_default_loop(
    sshd: Any, echo_server: Any, client_keypair: Any, secret_service: Any, free_tcp_port: int,
    opt_out: bool,
) -> None:
    sshd.authorize(client_keypair.public_line)
    write_private_file(paths.known_hosts_path(), sshd.known_hosts_line().encode() + b"\n")
    ssh_url = f"ssh://{sshd.user}@{sshd.host}:{sshd.port}"
    catalog = Catalog()
    added = catalog.add("echo", f"postgresql://u@127.0.0.1:{echo_server.port}/x", ssh_url,
                        key=ImportKey(client_keypair.private_pem.encode()))
    catalog.add("closed", f"postgresql://u@127.0.0.1:{free_tcp_port}/x", ssh_url,
                key=ReuseKey(added.key.id))

    env = dict(os.environ)
    env.pop("TUNNEL_TUI_UVLOOP", None)
    if opt_out:
        env["TUNNEL_TUI_UVLOOP"] = "0"
    agent = start_agent_process(Path(os.environ["TUNNEL_TUI_HOME"]), env)
    try:
        assert _uses_uvloop(agent.pid) is not opt_out
        client = AgentClient()
        good = client.up("echo")
        assert good.state is TunnelState.UP and good.local_port

        payload = os.urandom(4 * 1024 * 1024)
        echoed = _echo_round_trip(good.local_port, payload)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
        wait_until(lambda: client.status("echo")[0].bytes_in >= len(payload), 5, "bytes_in")
        assert client.status("echo")[0].bytes_out >= len(payload)

        bad = client.up("closed")
        with socket.create_connection(("127.0.0.1", bad.local_port), timeout=5) as sock:
            try:
                assert sock.recv(10) == b""
            except ConnectionResetError:
                pass  # the reset: what a database driver reports at once
        status = wait_until(lambda: client.status("closed")[0].last_error, 5, "cause recorded")
        assert "connection refused" in status
        assert client.status("echo")[0].state is TunnelState.UP
    finally:
        agent.stop()
