"""`status` without click: the statuses (from the agent, else the config) and the
80-column table. Kept free of click so `status_fast` can answer `status [--json]`
in a few milliseconds (people run it in shell prompts and loops)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tunnel_tui.core import formatting
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.status import TunnelState, TunnelStatus

WIDTH = 80


def statuses_now(home: Path | None, name: str | None) -> tuple[list[TunnelStatus], bool]:
    """(statuses, agent running): the agent's view, or every configured connection down."""
    from tunnel_tui.agent.snapshot import statuses_now as snapshot_now

    return snapshot_now(home, name)


# -- the table ---------------------------------------------------------------------

# STATE fits every state word ("waiting-for-secret") and "failed: host key" (the kind
# of a failure in a word, core.failure_kind); the error is told in full below.
_COLUMNS = (("NAME", 14), ("STATE", 18), ("LOCAL", 15), ("IN/OUT", 13), ("UP", 6))


def render_table(
    statuses: list[TunnelStatus], *, running: bool, now: datetime | None = None
) -> str:
    """A compact table that fits 80 columns; failed tunnels get their error and hint below."""
    now = now or datetime.now(UTC)
    error_width = WIDTH - sum(width + 1 for _, width in _COLUMNS)
    lines = [_row([title for title, _ in _COLUMNS] + ["ERROR"], error_width)]
    for s in statuses:
        # A wait for the key has no port yet: LOCAL says how long it goes on.
        local = formatting.wait_left(s, now) or formatting.local_address(s, empty="-")
        traffic = formatting.traffic(s, empty="-", separator="/")
        uptime = formatting.uptime(s, now, empty="-")
        lines.append(
            _row(
                [s.name, formatting.state_word(s), local, traffic, uptime,
                 terminal_text(s.last_error or "")],
                error_width,
            )
        )
    if not statuses:
        lines.append("(no connections configured: `tunnel-tui add` creates one)")
    explained = (TunnelState.FAILED, TunnelState.WAITING_FOR_KEY, TunnelState.WAITING_FOR_SECRET)
    for s in statuses:
        if s.state in explained and (s.last_error or s.hint):
            lines.append("")
            lines.extend(_wrap(f"{s.name}: {terminal_text(s.last_error or 'failed')}", ""))
            if s.hint:
                lines.extend(_wrap(f"hint: {terminal_text(s.hint)}", "  "))
    if not running:
        lines.append("")
        lines.append("no agent running: no tunnels are up (`tunnel-tui up NAME` starts it)")
    elif statuses and all(s.state in (TunnelState.DOWN, TunnelState.FAILED) for s in statuses):
        lines.append("")
        lines.append("no tunnels are up")
    return "\n".join(lines)


def _row(cells: list[str], error_width: int) -> str:
    parts = [_fit(cell, width) for cell, (_, width) in zip(cells, _COLUMNS, strict=False)]
    parts.append(_fit(cells[-1], error_width).rstrip())
    return " ".join(parts).rstrip()


def _fit(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line, whatever the error said
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width)


def _wrap(text: str, indent: str) -> list[str]:
    import textwrap

    # Never cut a word: a public key or a command in a hint must stay copy-pasteable.
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
