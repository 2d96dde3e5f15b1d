"""One place knows where things live: everything under one home directory.

`TUNNEL_TUI_HOME` overrides the platformdirs default (tests always set it).
Directories are created 0700 whatever the umask. A home directory or state file
that another user owns, or that group/others can write, is refused (ConfigError,
exit 1) and left exactly as it is: anyone who can write there could plant a
known_hosts entry, a config or a vault (issue 14, finding 6).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tunnel_tui.core.errors import ConfigError

APP_NAME = "tunnel-tui"
HOME_ENV = "TUNNEL_TUI_HOME"


def home_dir() -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser().absolute()
    import platformdirs  # only when no override: keeps `status` start-up light

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def check_ours(path: Path, info: os.stat_result) -> None:
    """Refuse (ConfigError) a file or directory of another user, or one that group or
    others can write. Changes nothing."""
    uid = os.getuid()
    if info.st_uid != uid:
        raise ConfigError(
            f"{path} belongs to another user (uid {info.st_uid}), not to you (uid {uid}); "
            "tunnel-tui will not use it",
            hint="set TUNNEL_TUI_HOME to a directory of your own",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path} can be written by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            "tunnel-tui will not use it",
            hint=f"check nobody changed what is in it, then: chmod go-w {path}",
        )


def check_private_dir(path: Path) -> None:
    """`check_ours` for a directory that may not exist yet."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    check_ours(path, info)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700. An existing one must be ours and not
    writable by others (else ConfigError, nothing changed); if others may read it, it
    is tightened to 0700. A missing `path` is created only in a directory that passes
    the same check (or a sticky one such as /tmp), so nothing is ever added to a
    refused home (e.g. its logs/ or run/)."""
    if not path.exists() and path.parent.exists():
        parent = os.stat(path.parent)
        if not parent.st_mode & stat.S_ISVTX:
            check_ours(path.parent, parent)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.stat(path)
    check_ours(path, info)
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def config_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / "config.toml"


def known_hosts_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / "known_hosts"


def vault_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / "vault.bin"


def log_dir(home: Path | None = None) -> Path:
    return (home or home_dir()) / "logs"


def state_dir(home: Path | None = None) -> Path:
    """What the agent must remember across a restart (the waits for a key)."""
    return (home or home_dir()) / "state"


def run_dir(home: Path | None = None) -> Path:
    """Agent socket and pid file live here."""
    return (home or home_dir()) / "run"
