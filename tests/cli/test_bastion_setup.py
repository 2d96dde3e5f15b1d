"""`bastion-setup NAME` (issue 17): the printed script parses, carries exactly the line
`key show --restricted` prints, and — run as root against a real OpenSSH sshd whose
user has a nologin shell — makes a working tunnel: exec psql through it succeeds."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import add_connection, cli, trust_host
from tunnel_tui.core.catalog import Catalog, ReuseKey


@pytest.fixture
def private_bastion(sshd_factory: Any, postgres: Any, client_keypair: Any,
                    secret_service: Any, agent_reaper: None) -> Any:
    """A bastion of our own (its user is ours to change), a connection through it, and
    a second connection on the same key through the same bastion."""
    server = sshd_factory()
    trust_host(server)
    add_connection("pg", "postgresql", postgres, server, client_keypair)
    Catalog().add("pg2", f"postgresql://{postgres.user}@10.9.8.7:6543/other",
                  f"ssh://{server.user}@{server.host}:{server.port}", key=ReuseKey("pg"))
    return server


def setup_script(name: str) -> str:
    result = cli("bastion-setup", name)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_script_parses_and_has_the_restricted_line(private_bastion: Any) -> None:
    text = setup_script("pg")
    parsed = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, timeout=30)
    assert parsed.returncode == 0, parsed.stderr
    restricted = cli("key", "show", "pg", "--restricted")
    assert restricted.returncode == 0
    line = restricted.stdout.strip()
    assert 'permitopen="10.9.8.7:6543"' in line and line.endswith("tunnel-tui:pg")
    quoted = f"line='{line}'"
    assert quoted in text.splitlines()
    assert "useradd --create-home --shell /usr/sbin/nologin" in text
    for setting in ("AllowTcpForwarding", "PermitOpen", "AllowUsers"):
        assert setting in text
    assert "used by: pg, pg2." in text
    assert cli("bastion-setup", "nope").returncode == 2


def test_run_on_a_real_bastion_a_nologin_user_tunnels(private_bastion: Any) -> None:
    user = private_bastion.user
    subprocess.run(["usermod", "--shell", "/usr/sbin/nologin", user], check=True, timeout=30)
    private_bastion.authorized_keys_path.write_text("")  # nothing authorized yet
    # '!' is what `useradd` leaves: sshd (UsePAM no) takes it as a locked account.
    subprocess.run(["usermod", "--password", "!", user], check=True, timeout=30)

    text = setup_script("pg")
    ran = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    ran_again = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=60)
    assert ran_again.returncode == 0, ran_again.stderr
    lines = private_bastion.authorized_keys_path.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restrict,port-forwarding,")  # once

    result = cli("exec", "pg", "--", "psql", "-tAc", "select 7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "7"

    # And why the script sets '*': with '!' sshd refuses even the right key.
    subprocess.run(["usermod", "--password", "!", user], check=True, timeout=30)
    locked = cli("exec", "pg", "--", "true")
    assert locked.returncode == 125, locked.stderr
