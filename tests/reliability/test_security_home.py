"""Finding 6 (issue 14): a home directory or state file that is not ours, or that
group/others can write, is refused: a clear message, exit 1, nothing changed.

The first release tightened the mode of whatever TUNNEL_TUI_HOME was (root chmod-ed
another user's directory) and read config.toml, known_hosts and the vault without
looking at who owns them: a world-writable home owned by someone else, with a planted
known_hosts, was used and trusted.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import asyncssh
import pytest

from tests.reliability.security_helpers import HostileSsh, public_line, run_cli
from tunnel_tui.core import paths
from tunnel_tui.core.config import load
from tunnel_tui.core.errors import ConfigError, TunnelTuiError
from tunnel_tui.core.known_hosts import KnownHosts, hash_name, host_name

OTHER = pwd.getpwnam("nobody")


def _tree(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every path under root with (mode, uid, size, mtime_ns): "nothing changed"."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = os.lstat(path)
        out[str(path)] = (info.st_mode, info.st_uid, info.st_size, info.st_mtime_ns)
    return out


def _plant_known_hosts(home: Path, host: str, port: int, key: asyncssh.SSHKey) -> Path:
    path = home / "known_hosts"
    path.write_text(f"{hash_name(host_name(host, port))} {public_line(key)}\n")
    return path


def _refused(out, what: str) -> None:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert what in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_home_of_another_user_open_to_all_is_refused(secret_service, isolated_env):
    home = isolated_env.home
    with HostileSsh() as server:  # plays the attacker's bastion
        server.add_connection("prod")
        _plant_known_hosts(home, server.host, server.port, server.host_key)
        for path in [home, *home.rglob("*")]:
            os.chown(path, OTHER.pw_uid, OTHER.pw_gid)
        os.chmod(home, 0o777)
        before = _tree(home)

        for args in (["list"], ["validate", "prod"], ["up", "prod"], ["status"],
                     ["hosts", "list"]):
            _refused(run_cli(*args), "belongs to another user")

        assert _tree(home) == before  # no chmod, no logs/ or run/, no new trust
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o777


def test_our_home_writable_by_others_is_refused(secret_service, isolated_env):
    home = isolated_env.home
    with HostileSsh() as server:
        server.add_connection("prod")
        os.chmod(home, 0o777)
        before = _tree(home)
        _refused(run_cli("validate", "prod"), "can be written by other users")
        assert _tree(home) == before


@pytest.mark.parametrize("state_file", ["known_hosts", "config.toml", "vault.bin"])
def test_state_file_planted_or_loose_is_refused(isolated_env, state_file):
    home = isolated_env.home
    path = home / state_file
    path.write_bytes(b"")  # the content does not matter: it is never read
    os.chown(path, OTHER.pw_uid, OTHER.pw_gid)
    with pytest.raises(TunnelTuiError, match="belongs to another user"):
        _read(state_file)
    os.chown(path, os.getuid(), os.getgid())
    os.chmod(path, 0o666)
    with pytest.raises(TunnelTuiError, match="can be written by other users"):
        _read(state_file)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666  # refused, not "fixed"


def _read(state_file: str) -> object:
    if state_file == "known_hosts":
        return KnownHosts(read_user_known_hosts=False).trusted_keys("h", 22)
    if state_file == "config.toml":
        return load()
    from tunnel_tui.core import vault
    from tunnel_tui.core.secret import Secret

    return vault.Vault.open(paths.vault_path(), Secret("x"))


def test_root_does_not_chmod_another_users_home(isolated_env):
    home = isolated_env.home
    os.chown(home, OTHER.pw_uid, OTHER.pw_gid)
    os.chmod(home, 0o755)  # readable by all, writable only by its owner
    _refused(run_cli("list"), "belongs to another user")
    with pytest.raises(ConfigError, match="belongs to another user"):
        paths.ensure_private_dir(home)
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o755
    assert os.stat(home).st_uid == OTHER.pw_uid
