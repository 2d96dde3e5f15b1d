"""Shared pieces of the reliability suite: the tunnel runner process, sshd log
counting, socket tables of a process, polling with a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.fixtures.netns import Netns, stop_process
from tests.fixtures.waiting import wait_until

RUNNER = Path(__file__).with_name("tunnel_runner.py")
REPO = Path(__file__).resolve().parents[2]


class TunnelRunner:
    """tests/reliability/tunnel_runner.py as a subprocess (optionally inside a netns)."""

    def __init__(self, spec: dict[str, Any], netns: Netns | None = None,
                 env: dict[str, str] | None = None) -> None:
        argv = [sys.executable, str(RUNNER)]
        kwargs: dict[str, Any] = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=REPO,
                                      env=env if env is not None else dict(os.environ))
        self.proc = netns.popen(argv, **kwargs) if netns else subprocess.Popen(argv, **kwargs)
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def states(self) -> list[str]:
        return [e["state"] for e in self.snapshot() if e.get("event") == "status"]

    def last(self) -> dict[str, Any]:
        events = [e for e in self.snapshot() if e.get("event") == "status"]
        return events[-1] if events else {}

    def wait_state(self, state: str, timeout: float, after: int = 0) -> dict[str, Any]:
        """The first status event with `state` at index >= `after` among status events."""

        def find() -> dict[str, Any] | None:
            self._check_alive()
            events = [e for e in self.snapshot() if e.get("event") == "status"]
            for event in events[after:]:
                if event["state"] == state:
                    return event
            return None

        return wait_until(find, timeout, lambda: f"state {state!r} (seen {self.states()})")

    def wait_error(self, timeout: float) -> dict[str, Any]:
        return wait_until(lambda: next((e for e in self.snapshot() if e.get("event") == "error"),
                                 None), timeout, "an error event")

    def _check_alive(self) -> None:
        if self.proc.poll() is None:
            return
        for reader in self._readers:  # the pipes reach EOF: everything it said is read
            reader.join(2)
        if not any(e.get("event") == "error" for e in self.snapshot()):
            raise AssertionError(
                f"runner exited {self.proc.returncode}: {''.join(self.stderr)[-3000:]}"
            )

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        stop_process(self.proc)


def runner_spec(server: Any, key_pem: str, target: tuple[str, int], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "t",
        "bastion": [server.host, server.port, server.user],
        "target": list(target),
        "key_pem": key_pem,
        "host_key_line": server.host_public_key,
        "keepalive": [0.5, 2],
        "backoff": [0.1, 0.5],
        "connect_timeout": 3.0,
    }
    spec.update(extra)
    return spec


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets among `pid`'s open file descriptors."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def connections_to(port: int, pid: int | None = None) -> set[str]:
    """Socket inodes of `pid`'s (default: this process's) ESTABLISHED TCP connections
    to `port`. A connection to a SIGSTOPped server is established by its kernel, so
    this sees an attempt the server itself cannot log."""
    pid = os.getpid() if pid is None else pid
    ours = socket_inodes(pid)
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port == port and fields[9] in ours:
                found.add(fields[9])
    return found


def connection_attempts(server: Any) -> int:
    """TCP connections sshd accepted (one log line each at LogLevel DEBUG1+)."""
    return server.log_text().count("Connection from ")


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that `pid` holds."""
    inodes = socket_inodes(pid)
    found = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            found.append((_decode_addr(addr_hex, v6), int(port_hex, 16)))
    return found


def _decode_addr(hexaddr: str, v6: bool) -> str:
    import ipaddress

    raw = bytes.fromhex(hexaddr)
    # /proc/net/tcp* stores each 32-bit word in host (little-endian) byte order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.IPv6Address(words) if v6 else ipaddress.IPv4Address(words))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
