"""Shared helpers of the rotation tests: log in to the real sshd with one key only;
stop the CLI's rotation part-way as a crash would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh

from tests.fixtures.binaries import require_binary
from tunnel_tui.rotation import CRASH_HOOK_ENV


def connect_with(server: Any, private_pem: str, **kwargs: Any) -> Any:
    """An asyncssh connection (awaitable / async context) using exactly this key."""
    return asyncssh.connect(
        server.host,
        server.port,
        username=server.user,
        client_keys=[asyncssh.import_private_key(private_pem)],
        known_hosts=asyncssh.import_known_hosts(server.known_hosts_line() + "\n"),
        agent_path=None,
        config=None,
        connect_timeout=10,
        **kwargs,
    )


def write_identity(directory: Path, private_pem: str, name: str) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private_pem)
    return path


def openssh_login_works(server: Any, identity: Path) -> bool:
    """Does the OpenSSH client get in with this key (and only this key)?"""
    ssh = require_binary("ssh", "openssh-client")
    result = subprocess.run(
        [ssh, *server.ssh_args(identity, None), "true"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return result.returncode == 0


async def key_accepted(server: Any, private_pem: str) -> bool:
    """Does sshd accept this key at all? (Unlike `openssh_login_works`, true also for a
    restricted line whose forced command, /bin/false, would fail the login's command.)"""
    try:
        async with connect_with(server, private_pem):
            return True
    except asyncssh.PermissionDenied:
        return False


def stop_rotation_after(stage: str, name: str = "prod") -> None:
    """`tunnel-tui rotate-key NAME`, killed right after `stage` was recorded (a crash)."""
    crashed = subprocess.run(
        [sys.executable, "-m", "tunnel_tui", "rotate-key", name],
        env={**os.environ, CRASH_HOOK_ENV: stage},
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
