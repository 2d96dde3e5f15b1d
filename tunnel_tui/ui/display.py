"""How tunnel facts read on screen: the theme's colour for each state, short host names.

Words, numbers and durations come from `tunnel_tui.core.formatting` (shared with the
CLI); this module only adds what is the app's own: colour and rich Text.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

from tunnel_tui.core import formatting
from tunnel_tui.core.formatting import (  # the shared words, for the widgets
    client_command,
    ellipsize,
    local_address,
    traffic,
    uptime,
)
from tunnel_tui.core.status import TunnelStatus

__all__ = [
    "STATE_COLOURS",
    "client_command",
    "ellipsize",
    "local_address",
    "short_host",
    "state_text",
    "traffic",
    "uptime",
]

# Theme variable names (resolved against the active theme, so light/dark both work).
STATE_COLOURS: dict[str, str] = {
    "up": "success",
    "connecting": "warning",
    "reconnecting": "warning",
    "waiting-for-key": "warning",
    "waiting-for-secret": "warning",
    "down": "foreground-muted",
    "failed": "error",
}


def state_text(status: TunnelStatus, theme: Mapping[str, str]) -> Text:
    variable = STATE_COLOURS.get(str(status.state), "warning")
    colour = theme.get(variable) or theme.get("foreground", "")
    return Text(formatting.state_label(status), style=colour, no_wrap=True)


def short_host(host: str) -> str:
    """"bastion-eu" for "bastion-eu.example.com"; IP addresses stay whole."""
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return host.split(".")[0]
