"""`up`, `down`, `status` and `agent`: the CLI side of the background agent.

`status` is the hot path (people run it in loops and prompts): it imports only
click, the agent client and `core`, and needs no keyring or D-Bus.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from tunnel_tui.agent.client import AgentClient, AgentNotRunning
from tunnel_tui.core.status import TunnelState, TunnelStatus

WIDTH = 80


def _home() -> Path | None:
    return None  # paths.home_dir() (TUNNEL_TUI_HOME or platformdirs) decides


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the status object.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the tunnel.",
)
def up(name: str, as_json: bool, timeout: float) -> None:
    """Bring tunnel NAME up in the agent (starting the agent if needed).

    Returns once SSH auth succeeded and the local port listens.
    """
    from tunnel_tui.agent.client import ensure_agent
    from tunnel_tui.agent.snapshot import configured_statuses

    configured_statuses(_home(), name)  # unknown name: exit 2 before starting anything
    status = ensure_agent(_home()).up(name, timeout=timeout)
    if as_json:
        click.echo(json.dumps(status.to_json()))
    else:
        click.echo(_up_line(status))


def _up_line(status: TunnelStatus) -> str:
    where = f"{status.local_host}:{status.local_port}"
    if status.state is TunnelState.UP:
        return f"{status.name} up on {where}"
    return f"{status.name} {status.state.value} on {where}"


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the status object.")
def down(name: str, as_json: bool) -> None:
    """Take tunnel NAME down (its local port stops listening)."""
    try:
        status = AgentClient(_home()).down(name)
    except AgentNotRunning:
        from tunnel_tui.agent.snapshot import configured_statuses

        status = configured_statuses(_home(), name)[0]
    if as_json:
        click.echo(json.dumps(status.to_json()))
    else:
        click.echo(f"{status.name} {status.state.value}")


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="An array of status objects.")
@click.option("--watch", is_flag=True, help="Keep refreshing until Ctrl-C.")
def status(name: str | None, as_json: bool, watch: bool) -> None:
    """Show tunnel states (all connections, or NAME). Needs no keyring."""
    if watch:
        _watch(name, as_json)
        return
    statuses, running = _statuses(name)
    if as_json:
        click.echo(json.dumps([s.to_json() for s in statuses]))
        return
    click.echo(render_table(statuses, running=running))


def _statuses(name: str | None) -> tuple[list[TunnelStatus], bool]:
    try:
        return AgentClient(_home()).status(name), True
    except AgentNotRunning:
        from tunnel_tui.agent.snapshot import configured_statuses

        return configured_statuses(_home(), name), False


def _watch(name: str | None, as_json: bool) -> None:
    import time

    current: dict[str, TunnelStatus] = {}
    try:
        while True:
            statuses, running = _statuses(name)
            current = {s.name: s for s in statuses}
            _redraw(current, running, as_json)
            if not running:
                time.sleep(1.0)  # wait for an agent to appear; Ctrl-C ends
                continue
            try:
                for event in AgentClient(_home()).events():
                    if name is not None and event.name != name:
                        continue
                    current[event.name] = event
                    _redraw(current, True, as_json)
            except AgentNotRunning:
                pass
    except KeyboardInterrupt:
        return


def _redraw(current: dict[str, TunnelStatus], running: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([s.to_json() for s in current.values()]))
        return
    if sys.stdout.isatty():
        click.echo("\x1b[H\x1b[2J", nl=False)
    click.echo(render_table(list(current.values()), running=running))


# -- the table ---------------------------------------------------------------------

_COLUMNS = (("NAME", 14), ("STATE", 12), ("LOCAL", 15), ("IN/OUT", 13), ("UP", 7))


def render_table(
    statuses: list[TunnelStatus], *, running: bool, now: datetime | None = None
) -> str:
    """A compact table that fits 80 columns; failed tunnels get their error and hint below."""
    now = now or datetime.now(UTC)
    error_width = WIDTH - sum(width + 1 for _, width in _COLUMNS)
    lines = [_row([title for title, _ in _COLUMNS] + ["ERROR"], error_width)]
    for s in statuses:
        local = f"{s.local_host}:{s.local_port}" if s.local_port else "-"
        traffic = (
            f"{_bytes(s.bytes_in)}/{_bytes(s.bytes_out)}"
            if s.state is not TunnelState.DOWN
            else "-"
        )
        uptime = _duration(now, s.since) if s.state is TunnelState.UP else "-"
        lines.append(
            _row([s.name, s.state.value, local, traffic, uptime, s.last_error or ""], error_width)
        )
    if not statuses:
        lines.append("(no connections configured: `tunnel-tui add` creates one)")
    for s in statuses:
        if s.state is TunnelState.FAILED and (s.last_error or s.hint):
            lines.append("")
            lines.extend(_wrap(f"{s.name}: {s.last_error or 'failed'}", ""))
            if s.hint:
                lines.extend(_wrap(f"hint: {s.hint}", "  "))
    if not running:
        lines.append("")
        lines.append("no tunnels are up (the agent is not running; `tunnel-tui up NAME` starts it)")
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

    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "K", "M", "G"):
        if value < 1000 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 10 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.0f}T"


def _duration(now: datetime, since: datetime | None) -> str:
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


# -- the agent itself -----------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option("--foreground", is_flag=True, help="Also log to stderr (the default: run here).")
@click.pass_context
def agent(ctx: click.Context, foreground: bool) -> None:
    """Run the agent in the foreground (Ctrl-C stops it and its tunnels)."""
    if ctx.invoked_subcommand is not None:
        return
    from tunnel_tui.agent.daemon import run

    ctx.exit(run(_home(), to_stderr=True))


@agent.command("stop")
def agent_stop() -> None:
    """Stop the running agent (its tunnels close)."""
    try:
        client = AgentClient(_home())
        pid = client.ping().get("pid")
        client.shutdown()
    except AgentNotRunning:
        click.echo("the agent is not running")
        return
    click.echo(f"agent {pid} stopping")
