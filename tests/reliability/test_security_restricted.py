"""Finding 2 (issue 14): the line `key show --restricted` prints allows tunnels only.

`restrict,port-forwarding,permitopen=…` alone still let the key run commands and
SFTP on the bastion; the line now ends with `command="/bin/false"`. Checked against
the real OpenSSH sshd: `up` and a query through the tunnel work, while a command
(`ssh … id`) and an SFTP session with the same key fail.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from tests.agent.test_agent_tunnels import add_connection, cli, pg_query, trust_host, up


def _sftp_args(ssh_args: list[str]) -> list[str]:
    """OpenSSH `sftp` takes the `ssh` options, but its port flag is -P."""
    return ["-P" if arg == "-p" else arg for arg in ssh_args]


def test_restricted_line_forwards_but_runs_nothing(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None,
) -> None:
    setup = add_connection("pg", "postgresql", postgres, sshd, client_keypair)
    shown = cli("key", "show", "pg", "--restricted")
    assert shown.returncode == 0, shown.stderr
    line = shown.stdout.strip()
    assert line.startswith(
        f'restrict,port-forwarding,permitopen="127.0.0.1:{postgres.port}",'
        'command="/bin/false" ssh-ed25519 '
    ), line
    sshd.authorize(line)  # exactly what the user pastes into authorized_keys
    trust_host(sshd)

    try:
        port = up("pg")
        assert asyncio.run(pg_query(port, setup.db, "SELECT 1")) == 1
    finally:
        cli("down", "pg")

    ssh = sshd.ssh_args(client_keypair.path, None)
    ran = subprocess.run(["ssh", *ssh, "id"], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    assert ran.returncode != 0 and "uid=" not in ran.stdout, ran.stdout + ran.stderr

    sftp = subprocess.run(["sftp", "-b", "-", *_sftp_args(ssh)], input="ls\n",
                          capture_output=True, text=True, timeout=30)
    assert sftp.returncode != 0, sftp.stdout + sftp.stderr
    assert "authorized_keys" not in sftp.stdout
