"""import-ssh-config: ~/.ssh/config hosts (HostName, User, Port, IdentityFile, ProxyJump)
read with asyncssh's parser; a missing IdentityFile is reported, not fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunnel_tui.core.errors import ConfigError, UsageError
from tunnel_tui.engine.sshconfig import host_aliases, import_hosts

CONFIG = """\
Host db-bastion
    HostName bastion.example.com
    User tunnel
    Port 2222
    IdentityFile ~/.ssh/id_present
    IdentityFile ~/.ssh/id_missing

Host jump1
    HostName jump.example.com
    User jumper

Host inner
    HostName 10.0.0.5
    ProxyJump jump1,ops@hop2.example.com:2022

Host *.corp
    User corpuser

Host *
    User fallback
    ServerAliveInterval 15
"""


@pytest.fixture
def ssh_config(isolated_env) -> Path:
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "id_present").write_text("not really a key\n")
    path = ssh_dir / "config"
    path.write_text(CONFIG)
    return path


def test_aliases_skip_patterns(ssh_config):
    assert host_aliases(ssh_config) == ["db-bastion", "jump1", "inner"]


def test_hostname_user_port_identity(ssh_config):
    (host,) = import_hosts(["db-bastion"])
    assert host.ssh_url == "ssh://tunnel@bastion.example.com:2222"
    assert host.jumps == ()
    home = os.environ["HOME"]
    assert host.identity_files == (f"{home}/.ssh/id_present",)
    assert host.missing_identity_files == (f"{home}/.ssh/id_missing",)


def test_proxyjump_chain_resolves_aliases(ssh_config):
    (host,) = import_hosts(["inner"])
    assert host.ssh_url == "ssh://fallback@10.0.0.5:22"  # `Host *` fills the gap
    assert host.jump_urls == [
        "ssh://jumper@jump.example.com:22",
        "ssh://ops@hop2.example.com:2022",
    ]


def test_unknown_host_and_bad_file(ssh_config):
    with pytest.raises(UsageError):
        import_hosts(["nope"])
    ssh_config.write_text("Host x\n  Port notanumber\n")
    with pytest.raises(ConfigError) as info:
        import_hosts(["x"])
    assert "notanumber" in info.value.message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunnel_tui", *args], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))


def test_cli_prints_urls_and_add_line(ssh_config):
    out = _cli("import-ssh-config")
    assert out.returncode == 0, out.stderr
    assert "db-bastion: ssh://tunnel@bastion.example.com:2222" in out.stdout
    assert "via ssh://ops@hop2.example.com:2022" in out.stdout
    assert "(missing, skipped)" in out.stdout
    assert ("tunnel-tui add inner --db DB_URL --ssh ssh://fallback@10.0.0.5:22 "
            "--jump ssh://jumper@jump.example.com:22 --jump ssh://ops@hop2.example.com:2022"
            ) in out.stdout
    out = _cli("import-ssh-config", "--json", "inner")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["alias"] == "inner" and len(rows[0]["jumps"]) == 2
    out = _cli("import-ssh-config", "nope")
    assert out.returncode == 2 and "nope" in out.stderr
