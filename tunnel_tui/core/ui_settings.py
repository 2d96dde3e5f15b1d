"""The app's own preferences, remembered between runs: `ui-settings.toml` in the
tunnel-tui home, 0600, written atomically. Only looks (the theme) — never a secret.

A missing, unreadable or odd file means the defaults: a preference is not worth
refusing to start for.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.paths import ensure_private_dir, home_dir

SETTINGS_FILE = "ui-settings.toml"
_THEME_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")


@dataclass(frozen=True)
class UiSettings:
    theme: str | None = None


def settings_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / SETTINGS_FILE


def load(home: Path | None = None) -> UiSettings:
    try:
        data = tomllib.loads(settings_path(home).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return UiSettings()
    theme = data.get("theme")
    if not isinstance(theme, str) or not _THEME_NAME.fullmatch(theme):
        theme = None
    return UiSettings(theme=theme)


def save(settings: UiSettings, home: Path | None = None) -> None:
    """Write the settings (atomically, 0600). Raises TunnelTuiError/OSError on failure."""
    from tunnel_tui.core.atomic import write_private_file

    if settings.theme is not None and not _THEME_NAME.fullmatch(settings.theme):
        raise TunnelTuiError(f"not a theme name: {settings.theme!r}")
    path = settings_path(home)
    ensure_private_dir(path.parent)
    lines = ["# tunnel-tui app preferences (no secrets here)"]
    if settings.theme is not None:
        lines.append(f'theme = "{settings.theme}"')
    write_private_file(path, ("\n".join(lines) + "\n").encode())
