"""`tunnel-tui validate` as a user runs it: real subprocess, real Secret Service,
real sshd and PostgreSQL. JSON Lines, exit codes, the unknown-host-key flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunnel_tui.commands.validate import render_step
from tunnel_tui.core.catalog import Catalog, ImportKey
from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import VALIDATION_STEPS, StepResult, StepStatus


@pytest.fixture
def tt(secret_service):
    env = dict(secret_service.env)
    env["TUNNEL_TUI_HOME"] = os.environ["TUNNEL_TUI_HOME"]
    env["HOME"] = os.environ["HOME"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tunnel_tui", *args], capture_output=True, text=True,
            env=env, timeout=90, stdin=subprocess.DEVNULL,
        )

    return run


@pytest.fixture
def pgconn(secret_service, sshd, client_keypair, postgres):
    sshd.authorize(client_keypair.public_line)
    Catalog().add(
        "pg", f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode(), None),
        db_password=Secret(postgres.password),
    )
    return "pg"


def test_unknown_host_key_without_tty_fails_printing_fingerprint_then_accepts(tt, pgconn, sshd):
    out = tt("validate", pgconn)
    assert out.returncode == 1, out.stderr
    assert sshd.host_fingerprint in out.stdout
    assert "✕ host-key" in out.stdout
    assert f"--accept-host-key {sshd.host_fingerprint}" in out.stdout
    assert "· channel" in out.stdout

    out = tt("validate", pgconn, "--json", "--accept-new-host-key")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["step"] for r in rows] == list(VALIDATION_STEPS)
    assert all(r["status"] == "ok" for r in rows)
    assert set(rows[0]) == {"step", "status", "elapsed_ms", "detail", "hint"}
    assert KnownHosts().check(sshd.host, sshd.port, sshd.host_public_key) == "trusted"

    out = tt("validate", pgconn)  # now trusted: the human log, all ✓
    assert out.returncode == 0, out.stdout
    assert out.stdout.count("✓") == len(VALIDATION_STEPS)


def test_bad_input_exits_2(tt, secret_service):
    out = tt("validate", "no-such-connection")
    assert out.returncode == 2
    assert "no-such-connection" in out.stderr
    out = tt("validate", "x", "--wait-for-key", "61")
    assert out.returncode == 2 and "--wait-for-key" in out.stderr


def test_render_step_rows():
    fail = render_step(StepResult("ssh-auth", StepStatus.FAIL, 40.2, "publickey rejected",
                                  "add this public key to ~u/.ssh/authorized_keys on h"))
    assert fail.splitlines() == [
        "✕ ssh-auth      40 ms  publickey rejected",
        "  → add this public key to ~u/.ssh/authorized_keys on h",
    ]
    assert render_step(StepResult("channel", StepStatus.SKIP)) == "· channel        skip"
    assert render_step(StepResult("config", StepStatus.OK, 1.0)).startswith("✓ config")


def test_unknown_host_key_on_a_tty_asks_and_saves(secret_service, pgconn, sshd):
    import pty
    import select
    import time

    env = dict(secret_service.env)
    env["TUNNEL_TUI_HOME"] = os.environ["TUNNEL_TUI_HOME"]
    env["HOME"] = os.environ["HOME"]
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tunnel_tui", "validate", pgconn],
                            stdin=slave, stderr=slave, stdout=subprocess.PIPE, text=True,
                            env=env)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"save it?" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 4096)
        assert sshd.host_fingerprint.encode() in seen, seen
        os.write(master, b"y\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert proc.returncode == 0, out
    assert "new, accepted and saved" in out
    assert KnownHosts().check(sshd.host, sshd.port, sshd.host_public_key) == "trusted"
