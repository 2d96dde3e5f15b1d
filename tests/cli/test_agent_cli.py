"""The agent's CLI as a person sees it: the 80-column status table, `--watch`,
`agent` in the foreground and `agent stop`, a socket owned by someone else, and
the vault forgetting its passphrase after the idle timeout."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.agent import AgentProcess, start_agent_process
from tests.fixtures.waiting import wait_until
from tunnel_tui.agent.address import resolve
from tunnel_tui.commands.agentctl import render_table
from tunnel_tui.core.catalog import Catalog, GenerateKey
from tunnel_tui.core.status import TunnelState, TunnelStatus


def cli(*args: str, timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def test_table_fits_80_columns_and_explains_failures() -> None:
    rows = [
        TunnelStatus(
            "analytics-production-replica",
            TunnelState.UP,
            "127.0.0.1",
            54321,
            "tunnel@bastion.example.com:22",
            "db.internal:5432",
            since=NOW - timedelta(hours=3, minutes=7),
            bytes_in=5_300_000,
            bytes_out=12_345,
            channels=2,
        ),
        TunnelStatus(
            "staging",
            TunnelState.FAILED,
            "127.0.0.1",
            None,
            "tunnel@bastion.example.com:22",
            "db.internal:5432",
            since=NOW,
            last_error="ssh-auth on tunnel@bastion.example.com:22: the server rejected the key "
            "SHA256:abcdefabcdefabcdefabcdefabcdefabcdefabcdefa",
            hint="add this public key to ~tunnel/.ssh/authorized_keys on bastion.example.com: "
            "tunnel-tui key show staging",
        ),
        TunnelStatus("idle", TunnelState.DOWN, "127.0.0.1", 6000, "a@b:22", "c:1"),
    ]
    table = render_table(rows, running=True, now=NOW)
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    assert lines[0].split() == ["NAME", "STATE", "LOCAL", "IN/OUT", "UP", "ERROR"]
    assert lines[1].startswith("analytics-pro… ") and "127.0.0.1:54321" in lines[1]
    assert "5.3 MB/12 kB" in lines[1] and "3h07m" in lines[1]
    assert "failed: auth" in lines[2] and "ssh-auth" in lines[2]
    # The full error and its hint follow the table, wrapped, nothing cut.
    rest = "\n".join(lines[4:])
    assert "staging: ssh-auth on tunnel@bastion.example.com:22" in rest
    assert "hint: add this public key" in rest and "tunnel-tui key show staging" in rest
    assert "no tunnels are up" not in table
    stopped = render_table(rows[2:], running=False, now=NOW)
    assert "no agent running" in stopped and "no tunnels are up" in stopped
    assert "no tunnels are up" in render_table(rows[1:], running=True, now=NOW)


def test_agent_foreground_and_stop(isolated_env: Any) -> None:
    home = Path(os.environ["TUNNEL_TUI_HOME"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunnel_tui", "agent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: resolve(home).socket.exists() or proc.poll() is not None, 15, "its socket"
        )
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        result = cli("agent", "stop")
        assert result.returncode == 0 and f"agent {proc.pid} stopping" in result.stdout
        assert proc.wait(15) == 0
        assert "listening on" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "not running" in cli("agent", "stop").stdout


def test_socket_owned_by_another_user_is_named(isolated_env: Any) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to create a file owned by another uid")
    address = resolve()
    address.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    address.socket.write_bytes(b"")
    os.chown(address.socket, 65534, 65534)
    result = cli("status")
    assert result.returncode == 1
    assert "belongs to another user (uid 65534)" in result.stderr
    assert "hint:" in result.stderr


class LineReader:
    """Lines of a child's stdout through a thread (select() cannot see Python's buffer)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def json(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        try:
            return json.loads(self.lines.get(timeout=timeout))  # type: ignore[no-any-return]
        except queue.Empty:
            raise AssertionError("status --watch printed nothing") from None


def test_watch_follows_changes_until_ctrl_c(
    secret_service: Any, agent_process: AgentProcess
) -> None:
    Catalog().add(
        "pg",
        "postgresql://app@127.0.0.1:5432/app",
        f"ssh://tunnel@127.0.0.1:{_closed_port()}",
        key=GenerateKey(),
    )
    proc = _watch("--json")
    lines = LineReader(proc)
    try:
        first = lines.json()
        assert [(s["name"], s["state"]) for s in first] == [("pg", "down")]
        assert cli("up", "pg", "--timeout", "10").returncode == 1  # nothing listens there
        states = []
        for _ in range(5):
            states = [s["state"] for s in lines.json()]
            if states == ["failed"]:
                break
        assert states == ["failed"]
    finally:
        _stop(proc)  # Ctrl-C: exits 0


def test_vault_forgets_its_passphrase_after_idle_timeout(isolated_env: Any) -> None:
    home = Path(os.environ["TUNNEL_TUI_HOME"])
    env = dict(os.environ, TUNNEL_TUI_VAULT_IDLE="0.5")
    agent = start_agent_process(home, env)
    try:
        result = cli("vault", "unlock", "--passphrase-stdin", input="hunter22\n")
        assert result.returncode == 0, result.stderr
        wait_until(lambda: "vault locked" in cli("vault", "status").stdout, 10, "the vault locked")
        assert "hunter22" not in agent.log_text()
        assert "locked after 0.5 s idle" in agent.log_text()
    finally:
        agent.stop()


HEAVY = ("asyncssh", "textual", "keyring", "jeepney", "secretstorage", "cryptography", "asyncpg")


def _imported_by_status() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tunnel_tui", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_status_stays_light_with_and_without_agent(isolated_env: Any) -> None:
    # The status path must work from a bare SSH login quickly: no SSH stack, no UI,
    # no keyring client, no crypto, whether it asks the agent or reads the config.
    from tunnel_tui.core import config, keys
    from tunnel_tui.core.model import Connection, Database, DbKind, Key, KeyType, SshEndpoint

    material = keys.generate()
    with config.update() as cfg:
        cfg.keys["k-1"] = Key(
            "k-1", "one", KeyType.ED25519, material.public_line, material.fingerprint, NOW
        )
        cfg.connections["pg"] = Connection(
            "pg", Database(DbKind.POSTGRESQL, "db", 5432), SshEndpoint("b", "u"), "k-1"
        )
    assert not set(HEAVY) & _imported_by_status()
    agent = start_agent_process(Path(os.environ["TUNNEL_TUI_HOME"]))
    try:
        assert not set(HEAVY) & _imported_by_status()
    finally:
        agent.stop()


FAST = (
    "import sys\n"
    "from tunnel_tui.commands.status_fast import run\n"
    "code = run(sys.argv[1:])\n"
    "assert 'click' not in sys.modules, 'the fast path imported click'\n"
    "sys.exit(99 if code is None else code)\n"
)


def _fast(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", FAST, *args], capture_output=True, text=True, timeout=60
    )


def test_status_fast_path_answers_like_click_without_importing_it(
    isolated_env: Any, secret_service: Any
) -> None:
    """`status [NAME] [--json]` without click gives byte-identical output and exit codes,
    with and without an agent; other forms are left to click."""
    Catalog().add(
        "pg",
        "postgresql://app@db.internal:5432/appdb",
        "ssh://tunnel@bastion.example.com:22",
        key=GenerateKey(),
        local_port=_closed_port(),
    )
    forms = [("status",), ("status", "--json"), ("status", "pg", "--json"), ("status", "nope")]

    def compare() -> None:
        for form in forms:
            fast, slow = _fast(*form), cli(*form)
            assert (fast.returncode, fast.stdout, fast.stderr) == (
                slow.returncode,
                slow.stdout,
                slow.stderr,
            ), form
        assert _fast("status", "nope").returncode == 2

    compare()
    agent = start_agent_process(Path(os.environ["TUNNEL_TUI_HOME"]))
    try:
        compare()
    finally:
        agent.stop()
    for other in (("status", "--watch"), ("status", "--help"), ("status", "a", "b"), ("list",)):
        assert _fast(*other).returncode == 99, other


def test_status_fast_entry_point_falls_back_to_click(isolated_env: Any) -> None:
    entry = "from tunnel_tui.entry import main; main()"
    fast = subprocess.run(
        [sys.executable, "-c", entry, "status", "--json"], capture_output=True, text=True
    )
    assert fast.returncode == 0 and json.loads(fast.stdout) == []
    listed = subprocess.run(
        [sys.executable, "-c", entry, "list", "--json"], capture_output=True, text=True
    )
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    bad = subprocess.run([sys.executable, "-c", entry, "status", "--bogus"], capture_output=True)
    assert bad.returncode == 2


def test_unknown_name_reads_the_same_in_every_command(isolated_env: Any) -> None:
    """Same words, same exit code 2, whichever command (agent side or catalog side)."""
    for args in (("up", "nope"), ("down", "nope"), ("status", "nope"), ("show", "nope")):
        out = cli(*args)
        assert out.returncode == 2, args
        assert out.stderr == "error: no connection named 'nope'\nhint: see tunnel-tui list\n"


def test_failure_hint_keeps_a_public_key_copy_pasteable() -> None:
    blob = "AAAAC3NzaC1lZDI1NTE5AAAAIC1OweKYrF8tPKsKXYV8045ZFfpggjgbo0/fyEbqmb4u"
    failed = TunnelStatus(
        "e2",
        TunnelState.FAILED,
        "127.0.0.1",
        None,
        "tt@127.0.0.1:42697",
        "127.0.0.1:5432",
        since=NOW,
        last_error="bastion tt@127.0.0.1:42697: publickey rejected for user tt",
        hint="add this public key to ~tt/.ssh/authorized_keys on 127.0.0.1: "
        f"ssh-ed25519 {blob} tunnel-tui:e2",
    )
    lines = render_table([failed], running=True, now=NOW).splitlines()
    assert lines[1].split()[:5] == ["e2", "failed:", "auth", "-", "-"]  # no traffic: no 0B/0B
    assert any(blob in line for line in lines)  # never cut in the middle
    assert any("tunnel-tui:e2" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_vault_status_json_has_the_same_keys_with_or_without_agent(isolated_env: Any) -> None:
    out = cli("vault", "status", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"exists": False, "unlocked": False, "idle_timeout": None}
    agent = start_agent_process(Path(os.environ["TUNNEL_TUI_HOME"]))
    try:
        state = json.loads(cli("vault", "status", "--json").stdout)
    finally:
        agent.stop()
    assert set(state) == {"exists", "unlocked", "idle_timeout"} and state["unlocked"] is False


class ChunkReader:
    """Refreshes of `status --watch` (table form), split on its header line."""

    HEADER = "tunnel-tui status · "

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines = LineReader(proc).lines

    def refreshes(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        chunks: list[list[str]] = []
        while len(chunks) <= count:  # the (count+1)-th header ends the count-th refresh
            left = deadline - time.monotonic()
            assert left > 0, f"status --watch printed {len(chunks)} refreshes, not {count}"
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                raise AssertionError("status --watch stopped printing") from None
            if line.startswith(self.HEADER):
                chunks.append([])
            if chunks:
                chunks[-1].append(line.rstrip("\n"))
        return ["\n".join(chunk) for chunk in chunks[:count]]


def _watch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tunnel_tui", "status", "--watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_watch_json_without_agent_is_status_json_every_second(secret_service: Any) -> None:
    Catalog().add("pg", "postgresql://app@127.0.0.1:5432/app",
                  f"ssh://tunnel@127.0.0.1:{_closed_port()}", key=GenerateKey())
    once = json.loads(cli("status", "--json").stdout)
    assert [(s["name"], s["state"]) for s in once] == [("pg", "down")]
    proc = _watch("--json")
    lines = LineReader(proc)
    try:
        started = time.monotonic()
        assert lines.json() == once
        assert lines.json() == once
        assert lines.json() == once
        # Three arrays: at least two one-second pauses between them, not a busy loop.
        assert time.monotonic() - started >= 1.8
    finally:
        _stop(proc)


def test_watch_table_has_a_header_and_says_no_agent(secret_service: Any) -> None:
    Catalog().add("pg", "postgresql://app@127.0.0.1:5432/app",
                  f"ssh://tunnel@127.0.0.1:{_closed_port()}", key=GenerateKey())
    proc = _watch()
    try:
        first, second = ChunkReader(proc).refreshes(2)
        for refresh in (first, second):
            assert "Ctrl-C to stop" in refresh.splitlines()[0]
            assert "no agent running" in refresh
            assert re.search(r"^pg\s+down\b", refresh, re.M), refresh
        stamp = re.compile(r"\d\d:\d\d:\d\d")
        assert stamp.search(first) and stamp.search(second)
        assert stamp.search(first).group(0) != stamp.search(second).group(0)  # type: ignore[union-attr]
    finally:
        _stop(proc)


def test_watch_uptime_advances(secret_service: Any, sshd: Any, add_tunnel_connection: Any,
                               agent_process: AgentProcess) -> None:
    from tunnel_tui.core.known_hosts import KnownHosts

    add_tunnel_connection("held", bastion=sshd)
    KnownHosts().add(sshd.host, sshd.port, sshd.host_public_key)
    up = cli("up", "held", "--timeout", "30")
    assert up.returncode == 0, up.stderr
    proc = _watch("held")
    try:
        refreshes = ChunkReader(proc).refreshes(3)
        uptimes = []
        for refresh in refreshes:
            row = next(line for line in refresh.splitlines() if line.startswith("held "))
            assert " up " in row, refresh
            uptimes.append(int(re.search(r"\b(\d+)s\b", row).group(1)))  # type: ignore[union-attr]
        assert uptimes == sorted(uptimes) and uptimes[-1] > uptimes[0], uptimes
    finally:
        _stop(proc)


def test_click_usage_errors_read_like_ours(isolated_env: Any) -> None:
    result = cli("status", "--bogus")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: no such option '--bogus'",
        "hint: see tunnel-tui status --help",
    ]
    unknown = cli("frobnicate")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[0] == "error: no such command 'frobnicate'"
