"""How tunnel facts read on screen: state words and symbols, byte counts, durations.

Pure functions of data (and the theme's colours), shared by the table and the detail pane.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from rich.text import Text

from tunnel_tui.core.status import TunnelState, TunnelStatus

# The state is always a symbol *and* a word, never colour alone.
STATE_SYMBOLS: dict[TunnelState, str] = {
    TunnelState.UP: "●",
    TunnelState.CONNECTING: "◌",
    TunnelState.RECONNECTING: "◌",
    TunnelState.DOWN: "○",
    TunnelState.FAILED: "✕",
}
# Theme variable names (resolved against the active theme, so light/dark both work).
STATE_COLOURS: dict[TunnelState, str] = {
    TunnelState.UP: "success",
    TunnelState.CONNECTING: "warning",
    TunnelState.RECONNECTING: "warning",
    TunnelState.DOWN: "foreground-muted",
    TunnelState.FAILED: "error",
}


def short_reason(error: str | None, limit: int = 14) -> str:
    """A few words of an error for the STATE cell; the detail pane shows all of it."""
    if not error:
        return ""
    text = error.split(":")[0].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_text(status: TunnelStatus, theme: Mapping[str, str]) -> Text:
    word = status.state.value
    if status.state is TunnelState.FAILED and status.last_error:
        word = f"failed: {short_reason(status.last_error)}"
    colour = theme.get(STATE_COLOURS[status.state]) or theme.get("foreground", "")
    return Text(f"{STATE_SYMBOLS[status.state]} {word}", style=colour, no_wrap=True)


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def traffic(status: TunnelStatus) -> str:
    if status.state is not TunnelState.UP and not (status.bytes_in or status.bytes_out):
        return "—"
    return f"{human_bytes(status.bytes_in)} / {human_bytes(status.bytes_out)}"


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def uptime(status: TunnelStatus, now: datetime | None = None) -> str:
    if status.state is not TunnelState.UP or status.since is None:
        return "—"
    now = now or datetime.now(UTC)
    return duration((now - status.since).total_seconds())


def local_address(status: TunnelStatus) -> str:
    if status.local_port is None:
        return "—"
    return f"{status.local_host}:{status.local_port}"


def short_host(host: str) -> str:
    """"bastion-eu" for "bastion-eu.example.com"; IP addresses stay whole."""
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return host.split(".")[0]


def ellipsize(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def client_command(kind: str, user: str, database: str, host: str, port: int) -> str:
    """A ready command (or URL) for the local end of a tunnel; never with a password."""
    if kind == "postgresql":
        return f'psql "postgresql://{user}@{host}:{port}/{database}"'
    if kind == "mysql":
        db = f" {database}" if database else ""
        return f"mysql -h {host} -P {port} -u {user}{db}"
    if kind == "vertica":
        return f"vsql -h {host} -p {port} -U {user} {database}".rstrip()
    if kind == "trino":
        return f"trino --server http://{host}:{port} --user {user}"
    return f"http://{host}:{port}"
