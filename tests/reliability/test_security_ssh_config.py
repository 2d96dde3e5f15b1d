"""Finding 4 (issue 14): `import-ssh-config` never runs a `Match exec` command.

asyncssh's config loader runs `Match exec` through a shell while reading the file,
once per host and once per ProxyJump hop: showing an untrusted `--config` (or a file
it `Include`s) ran code. Now such a Match block counts as not matching, and the
output says the command was skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.security_helpers import run_cli


def _hostile_config(tmp: Path, marker: Path) -> Path:
    included = tmp / "extra.conf"
    included.write_text(
        f'Match exec "touch {marker}.included"\n'
        "  User from-included-block\n"
    )
    config = tmp / "config"
    config.write_text(
        f"Include {included}\n"
        f'Match host db exec "touch {marker}"\n'
        "  User from-exec-block\n"
        f'Match !exec "touch {marker}.negated"\n'
        "  Port 2222\n"
        "Host db\n"
        "  HostName db.example.com\n"
        "  User alice\n"
        "  ProxyJump hop\n"
        "Host hop\n"
        "  HostName hop.example.com\n"
    )
    return config


def test_match_exec_is_not_run_and_is_reported(isolated_env):
    marker = isolated_env.root / "pwned"
    config = _hostile_config(isolated_env.root, marker)

    out = run_cli("import-ssh-config", "--config", str(config))
    assert out.returncode == 0, out.stderr
    assert not list(isolated_env.root.glob("pwned*")), "a Match exec command ran"
    assert "db: ssh://alice@db.example.com:22" in out.stdout
    assert "via ssh://" in out.stdout and "hop.example.com:22" in out.stdout
    assert "from-exec-block" not in out.stdout and "from-included" not in out.stdout
    assert "2222" not in out.stdout
    assert f"skipped: Match exec 'touch {marker}' ({config} line 2) was not run" in out.stdout
    assert f"touch {marker}.included" in out.stdout and f"touch {marker}.negated" in out.stdout

    out = run_cli("import-ssh-config", "--config", str(config), "--json", "db")
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["ssh"] == "ssh://alice@db.example.com:22"
    assert set(row["skipped_match_exec"]) == {
        f"touch {marker}", f"touch {marker}.included", f"touch {marker}.negated"}
    assert not list(isolated_env.root.glob("pwned*"))
