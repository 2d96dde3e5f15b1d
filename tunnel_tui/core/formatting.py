"""How numbers, times and states read, for the CLI and the TUI alike.

The one place that formats bytes, durations and tunnel states, so `status` and the app
never disagree (the first release showed the same 1,500,000 bytes as "1.4M" in one and
"1.5 MB" in the other). Also the ready-to-paste client command for a tunnel's local end,
shell-quoted so hostile user or database names cannot run anything when pasted.

Pure Python: no Textual, no rich (renderers add colour themselves).
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from urllib.parse import quote

from tunnel_tui.core.failure_kind import FAILURE_KINDS, failed_word
from tunnel_tui.core.status import TunnelState, TunnelStatus

# -- bytes ---------------------------------------------------------------------------


def human_bytes(count: int) -> str:
    """Decimal units, as disks and networks count: 1,500,000 bytes -> "1.5 MB".
    At most 6 characters ("999 kB", "1.5 GB"), so two fit an 80-column table."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.5 or unit == "TB":
            if unit == "B" or value >= 9.95:
                return f"{value:.0f} {unit}"
            return f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def traffic(status: TunnelStatus, empty: str = "—", separator: str = " / ") -> str:
    """Bytes in (from the database) then out, e.g. "1.2 MB / 88 kB"; `empty` while
    nothing moved and the tunnel is not up."""
    if status.state is not TunnelState.UP and not (status.bytes_in or status.bytes_out):
        return empty
    return f"{human_bytes(status.bytes_in)}{separator}{human_bytes(status.bytes_out)}"


# -- durations -----------------------------------------------------------------------


def duration(seconds: float) -> str:
    """Compact, for table cells: "5s", "13m", "2h13m", "3d2h"."""
    total = int(max(seconds, 0))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def duration_words(seconds: float) -> str:
    """For sentences: "45 s", "2 min 05 s", "1 h 30 min" (never "0 min")."""
    total = max(0, int(seconds + 0.5))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    minutes = round(rest / 60)
    if minutes == 60:
        hours, minutes = hours + 1, 0
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def age_words(created: datetime, now: datetime | None = None) -> str:
    """How old a key is: "today", "yesterday", "41 days ago" (never "0 days ago")."""
    days = max(((now or datetime.now(UTC)) - created).days, 0)
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    return f"{days} days ago"


def since(status: TunnelStatus, now: datetime | None = None) -> float | None:
    """Seconds in the current state, or None when the status has no start time."""
    if status.since is None:
        return None
    return ((now or datetime.now(UTC)) - status.since).total_seconds()


def wait_left(status: TunnelStatus, now: datetime | None = None) -> str | None:
    """"43 min left" for a tunnel waiting (for its key) until `wait_until`; None when
    it is not waiting. Rounded up: "1 min left" until the very end."""
    if status.wait_until is None:
        return None
    seconds = (status.wait_until - (now or datetime.now(UTC))).total_seconds()
    if seconds <= 0:
        return "time is up"
    if seconds < 60:
        return f"{int(seconds + 0.999)} s left"
    return f"{int((seconds + 59.999) // 60)} min left"


def local_clock(moment: datetime) -> str:
    """"14:05": a UTC moment as this computer's local time (lines people read)."""
    return moment.astimezone().strftime("%H:%M")


def uptime(status: TunnelStatus, now: datetime | None = None, empty: str = "—") -> str:
    """How long an `up` tunnel has been up; `empty` for any other state."""
    seconds = since(status, now)
    if status.state is not TunnelState.UP or seconds is None:
        return empty
    return duration(seconds)


# -- states --------------------------------------------------------------------------

# The state is always a symbol *and* a word, never colour alone.
STATE_SYMBOLS: dict[str, str] = {
    "up": "●",
    "connecting": "◌",
    "reconnecting": "◌",
    "waiting-for-key": "◌",
    "waiting-for-secret": "◌",
    "down": "○",
    "failed": "✕",
}


def state_symbol(state: TunnelState | str) -> str:
    return STATE_SYMBOLS.get(str(state), "◌")


def state_word(status: TunnelStatus) -> str:
    """"up", "reconnecting", "failed: auth" (a failure names its kind in a word or two:
    auth, dns, host key, refused, timeout; details show the whole error)."""
    if status.state is TunnelState.FAILED:
        return failed_word(status.last_error)
    return str(status.state)


def state_label_width() -> int:
    """The widest `state_label` of any state (state cells are this wide)."""
    words = [str(state) for state in TunnelState if state is not TunnelState.FAILED]
    words += [f"failed: {kind}" for kind in FAILURE_KINDS]
    return 2 + max(len(word) for word in words)


def state_label(status: TunnelStatus) -> str:
    """Symbol and word: "● up", "✕ failed: auth"."""
    return f"{state_symbol(status.state)} {state_word(status)}"


def local_address(status: TunnelStatus, empty: str = "—") -> str:
    if status.local_port is None:
        return empty
    return f"{status.local_host}:{status.local_port}"


def ellipsize(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


# -- the client command of a tunnel's local end -----------------------------------------


def client_command(kind: str, user: str, database: str, host: str, port: int) -> str:
    """A ready command (or URL) for the local end of a tunnel; never with a password.

    Every argument is shell-quoted and URL parts are percent-encoded: user and database
    names may hold `$()`, quotes or `;`, and a pasted command must run only the client.
    A database name that starts with "-" is passed as an option value, never as an option.
    """
    if kind == "postgresql":
        url = f"postgresql://{_url_part(user)}@{host}:{port}/{_url_part(database)}"
        return _command("psql", url)
    if kind == "mysql":
        args = ["mysql", "-h", host, "-P", str(port), "-u", user]
        if database:
            args.append(f"--database={database}" if database.startswith("-") else database)
        return _command(*args)
    if kind == "vertica":
        args = ["vsql", "-h", host, "-p", str(port), "-U", user]
        if database:
            args += ["-d", database] if database.startswith("-") else [database]
        return _command(*args)
    if kind == "trino":
        return _command("trino", "--server", f"http://{host}:{port}", "--user", user)
    return f"http://{host}:{port}"


def _url_part(text: str) -> str:
    return quote(text, safe="")


def _command(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in args)
