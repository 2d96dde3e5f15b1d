"""`tunnel-tui forward NAME`: a foreground tunnel a script can use, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tunnel_tui.core.catalog import Catalog, ImportKey
from tunnel_tui.core.known_hosts import KnownHosts


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    buf = ""
    while time.monotonic() < deadline:
        chunk = proc.stdout.readline()
        if chunk:
            buf += chunk
            if buf.endswith("\n"):
                return buf
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.02)  # sync test polling a subprocess pipe, bounded
    raise AssertionError(f"no line within {timeout}s; got {buf!r}; stderr "
                         f"{proc.stderr.read() if proc.stderr else ''}")


def test_forward_holds_tunnel_until_ctrl_c(secret_service, sshd, client_keypair, echo_server):
    sshd.authorize(client_keypair.public_line)
    KnownHosts().add(sshd.host, sshd.port, sshd.host_public_key)
    Catalog().add(
        "fw", f"postgresql://app@127.0.0.1:{echo_server.port}/db",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode(), None),
    )
    env = dict(os.environ)
    env.update(secret_service.env)
    proc = subprocess.Popen([sys.executable, "-m", "tunnel_tui", "forward", "fw"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = _read_line(proc, 30)
        assert line.startswith("fw up on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"via forward")
            assert sock.recv(100) == b"via forward"
        assert Catalog().get("fw").local_port == port  # saved for next time
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "fw down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_forward_unknown_host_key_fails_with_hint(secret_service, sshd, client_keypair):
    sshd.authorize(client_keypair.public_line)
    Catalog().add(
        "fw2", "postgresql://app@127.0.0.1:5432/db", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode(), None),
    )
    env = dict(os.environ)
    env.update(secret_service.env)
    out = subprocess.run([sys.executable, "-m", "tunnel_tui", "forward", "fw2"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1
    assert f"--accept-host-key {sshd.host_fingerprint}" in out.stderr
