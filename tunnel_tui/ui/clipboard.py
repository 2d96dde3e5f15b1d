"""Whether a copy reaches the user's clipboard.

Textual copies by sending OSC 52 to the terminal; many terminals (and tmux or screen
without set-clipboard) drop it silently. Say "Copied" only where it is known to work;
elsewhere the text stays on screen to be selected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Terminals that accept OSC 52 by default (TERM_PROGRAM or TERM names).
_OSC52_PROGRAMS = ("iterm.app", "wezterm", "ghostty", "vscode", "tabby", "rio", "warpterminal")
_OSC52_TERMS = ("kitty", "alacritty", "foot", "wezterm", "ghostty", "contour")


def copy_reaches_clipboard(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    override = env.get("TUNNEL_TUI_CLIPBOARD", "").lower()
    if override in ("osc52", "yes", "1"):
        return True
    if override in ("no", "0", "none"):
        return False
    if env.get("TMUX") or env.get("STY"):
        return False  # tmux/screen pass OSC 52 on only when configured to
    if env.get("WT_SESSION"):
        return True  # Windows Terminal
    program = env.get("TERM_PROGRAM", "").lower()
    term = env.get("TERM", "").lower()
    return program in _OSC52_PROGRAMS or any(name in term for name in _OSC52_TERMS)
