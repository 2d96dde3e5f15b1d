"""The agent's socket as a user meets it: it answers, it refuses strangers, it survives
garbage, it cleans up after SIGTERM and a SIGKILLed agent never blocks the next one.
No tunnels here (see test_agent_tunnels.py for those)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.agent import AgentProcess, pid_alive, reap_home_agent, start_agent_process
from tests.fixtures.waiting import wait_until
from tunnel_tui.agent import protocol
from tunnel_tui.agent.address import resolve
from tunnel_tui.agent.client import AgentClient, AgentNotRunning, ensure_agent


def _raw_exchange(path: Path, payload: bytes, replies: int) -> list[dict[str, object]]:
    """Send raw bytes, read `replies` reply lines (bounded by a socket timeout)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(str(path))
        sock.sendall(payload)
        stream = sock.makefile("rb")
        return [json.loads(stream.readline()) for _ in range(replies)]


def test_private_socket_answers_ping_and_empty_status(agent_process: AgentProcess) -> None:
    address = resolve(agent_process.home)
    assert stat.S_IMODE(os.stat(address.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(address.socket.parent).st_mode) == 0o700
    client = agent_process.client()
    assert client.ping()["pid"] == agent_process.pid
    assert client.status() == []
    assert address.pid.read_text().strip() == str(agent_process.pid)


def test_garbage_and_oversized_requests_get_errors_and_agent_keeps_serving(
    agent_process: AgentProcess,
) -> None:
    replies = _raw_exchange(
        agent_process.socket,
        b"garbage\n"
        b"[1,2]\n"
        b'{"v":99,"id":1,"op":"status"}\n'
        b'{"v":2,"id":2,"op":"explode"}\n'
        b'{"v":2,"id":3,"op":"up"}\n'
        b'{"v":2,"id":4,"op":"status","name":""}\n'
        b"\xff\xfe\n"
        b'{"v":2,"id":5,"op":"ping"}\n',
        8,
    )
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in replies]  # type: ignore[index]
    assert codes == [
        protocol.BAD_REQUEST,
        protocol.BAD_REQUEST,
        protocol.BAD_VERSION,
        protocol.UNKNOWN_OP,
        protocol.BAD_REQUEST,
        protocol.BAD_REQUEST,
        protocol.BAD_REQUEST,
        "ok",
    ]
    assert replies[3]["id"] is None and replies[7]["id"] == 5
    big = b'{"v":2,"id":6,"op":"ping","pad":"' + b"x" * (protocol.MAX_REQUEST_BYTES + 10) + b'"}\n'
    (reply,) = _raw_exchange(agent_process.socket, big, 1)
    assert reply["ok"] is False and reply["error"]["code"] == protocol.TOO_LARGE  # type: ignore[index]
    # A client that connects and hangs up at once, and one that never finishes its line.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(agent_process.socket))
    with socket.socket(socket.AF_UNIX) as half:
        half.connect(str(agent_process.socket))
        half.sendall(b'{"v":2,')
        assert agent_process.client().ping()["pid"] == agent_process.pid
    assert agent_process.process.poll() is None


def test_sigterm_removes_socket_and_pid_file(agent_process: AgentProcess) -> None:
    address = resolve(agent_process.home)
    assert agent_process.stop(signal.SIGTERM) == 0
    assert not address.socket.exists()
    assert not address.pid.exists()
    with pytest.raises(AgentNotRunning):
        AgentClient(agent_process.home).status()
    assert f"agent {agent_process.pid} stopped" in agent_process.log_text()


def test_sigkilled_agent_leaves_no_blocking_socket(agent_reaper: None) -> None:
    home = Path(os.environ["TUNNEL_TUI_HOME"])
    first = ensure_agent(home)
    first_pid = first.ping()["pid"]
    assert isinstance(first_pid, int)
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(first_pid), 10, f"pid {first_pid} to exit")
    address = resolve(home)
    assert address.socket.exists()  # what a crash leaves behind
    with pytest.raises(AgentNotRunning):
        AgentClient(home).ping()
    second_pid = ensure_agent(home).ping()["pid"]
    assert second_pid != first_pid
    assert AgentClient(home).status() == []


def test_second_agent_for_same_home_steps_aside(agent_process: AgentProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tunnel_tui.agent", "--home", str(agent_process.home)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert f"already running for {agent_process.home} (pid {agent_process.pid})" in result.stderr
    assert agent_process.client().ping()["pid"] == agent_process.pid


# A minimal client in plain Python, run under another uid: it must not need our venv.
_FOREIGN_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect_error": type(exc).__name__})); sys.exit(0)
try:
    s.sendall(b'{"v":2,"id":1,"op":"status"}\n')
except BrokenPipeError:
    pass  # the agent may refuse and hang up before our request arrives
print(s.makefile("rb").readline().decode().strip() or json.dumps({"closed": True}))
"""


def _as_nobody(socket_path: Path) -> dict[str, object]:
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    setpriv = "/usr/bin/setpriv"
    if not os.path.exists(setpriv):
        pytest.skip("setpriv missing: apt-get install util-linux")
    result = subprocess.run(
        [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        + [sys.executable, "-I", "-c", _FOREIGN_CLIENT, str(socket_path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_other_uid_is_blocked_by_the_private_directory(agent_process: AgentProcess) -> None:
    assert _as_nobody(agent_process.socket) == {"connect_error": "PermissionError"}
    assert agent_process.client().ping()["pid"] == agent_process.pid


def test_other_uid_is_refused_by_peer_credentials(agent_process: AgentProcess) -> None:
    # Loosen every layer in front of the socket so the peer-uid check is what answers.
    sock_path = agent_process.socket
    loosened = []
    for directory in [sock_path.parent, *sock_path.parent.parents]:
        mode = stat.S_IMODE(os.stat(directory).st_mode)
        if mode & 0o001 == 0:
            loosened.append((directory, mode))
            os.chmod(directory, mode | 0o011)
    os.chmod(sock_path, 0o666)
    try:
        reply = _as_nobody(sock_path)
    finally:
        for directory, mode in loosened:
            os.chmod(directory, mode)
        os.chmod(sock_path, 0o600)
    assert reply["ok"] is False
    assert reply["error"]["code"] == protocol.FORBIDDEN  # type: ignore[index]
    assert "may not use it" in reply["error"]["message"]  # type: ignore[index]
    assert "refused a connection from uid 65534" in agent_process.log_text()
    assert agent_process.client().ping()["pid"] == agent_process.pid


def test_long_home_uses_short_socket_and_records_it(isolated_env: object) -> None:
    home = Path(os.environ["TUNNEL_TUI_HOME"]) / ("deep-" * 20) / "home"
    home.mkdir(parents=True, mode=0o700)
    address = resolve(home)
    assert address.is_fallback and len(os.fsencode(address.socket)) < 100
    agent = start_agent_process(home)
    try:
        assert AgentClient(home).ping()["pid"] == agent.pid
        assert address.addr_file.read_text().strip() == str(address.socket)
        assert stat.S_IMODE(os.stat(address.socket.parent).st_mode) == 0o700
    finally:
        agent.stop()
        reap_home_agent(home)
    assert not address.socket.exists()


def test_events_stream_starts_with_a_snapshot_and_ends_when_agent_stops(
    agent_process: AgentProcess,
) -> None:
    client = agent_process.client()
    events = client.events(interval=0.1)
    # No connections configured: the stream is quiet; shutting the agent down ends it.
    client.shutdown()
    assert list(events) == []
    assert agent_process.process.wait(10) == 0


def test_agent_sees_config_changes_without_restart(agent_process: AgentProcess) -> None:
    from datetime import UTC, datetime

    from tunnel_tui.core import config, keys
    from tunnel_tui.core.model import Connection, Database, DbKind, Key, KeyType, SshEndpoint

    material = keys.generate()
    with config.update() as cfg:
        cfg.keys["k-1"] = Key(
            "k-1",
            "one",
            KeyType.ED25519,
            material.public_line,
            material.fingerprint,
            datetime.now(UTC),
        )
        cfg.connections["late"] = Connection(
            "late",
            Database(DbKind.MYSQL, "db.internal", 3306),
            SshEndpoint("bastion.example.com", "tunnel"),
            "k-1",
            local_port=13306,
        )
    (row,) = agent_process.client().status()
    assert (row.name, row.state.value, row.local_port) == ("late", "down", 13306)
    assert row.bastion == "tunnel@bastion.example.com:22" and row.target == "db.internal:3306"
    with config.update() as cfg:
        del cfg.connections["late"]
    assert agent_process.client().status() == []


def test_removed_socket_is_recreated(agent_process: AgentProcess) -> None:
    os.unlink(agent_process.socket)
    wait_until(agent_process.socket.exists, 10, "the socket recreated")
    assert agent_process.client().ping()["pid"] == agent_process.pid
    assert stat.S_IMODE(os.stat(agent_process.socket).st_mode) == 0o600
