"""One place knows where things live: everything under one home directory.

`TUNNEL_TUI_HOME` overrides the platformdirs default (tests always set it).
Directories are created 0700 whatever the umask.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "tunnel-tui"
HOME_ENV = "TUNNEL_TUI_HOME"


def home_dir() -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser().absolute()
    import platformdirs  # only when no override: keeps `status` start-up light

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700; tighten an existing one we own."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
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


def run_dir(home: Path | None = None) -> Path:
    """Agent socket and pid file live here."""
    return (home or home_dir()) / "run"
