"""Statuses of configured connections from the config file alone (no agent, no
keyring, no D-Bus): what `status` shows when no agent runs, and the `down` rows
the agent merges with its live tunnels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunnel_tui.core.errors import NotFoundError
from tunnel_tui.core.status import TunnelState, TunnelStatus

if TYPE_CHECKING:
    from tunnel_tui.core.model import Connection


def down_status(conn: Connection) -> TunnelStatus:
    return TunnelStatus(
        name=conn.name,
        state=TunnelState.DOWN,
        local_host=conn.local_host,
        local_port=conn.local_port,
        bastion=conn.bastion.display,
        target=conn.database.target,
    )


def load_connections(home: Path | None = None) -> dict[str, Connection]:
    """The configured connections, read from the config file only."""
    from tunnel_tui.core import config, paths

    if not paths.config_path(home).exists():
        return {}
    return dict(config.load(home).connections)


def unknown(name: str) -> NotFoundError:
    return NotFoundError(
        f"no connection named {name!r}", hint="see tunnel-tui list"
    )


def configured_statuses(home: Path | None = None, name: str | None = None) -> list[TunnelStatus]:
    connections = load_connections(home)
    if name is not None:
        if name not in connections:
            raise unknown(name)
        return [down_status(connections[name])]
    return [down_status(conn) for conn in connections.values()]


def statuses_now(
    home: Path | None = None, name: str | None = None
) -> tuple[list[TunnelStatus], bool]:
    """(statuses, agent running): the agent's view, or every configured connection down.
    The one implementation behind `status` (kept free of dataclass and enum definitions:
    it is on the path people run in shell prompts) and `actions.tunnels.status_snapshot`."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    try:
        return AgentClient(home).status(name), True
    except AgentNotRunning:
        return configured_statuses(home, name), False


def status_objects(
    home: Path | None, name: str | None, statuses: list[TunnelStatus], running: bool
) -> list[dict[str, Any]]:
    """`status [NAME] --json`: the status objects; with a NAME the object also carries
    `history` (agent/history.py: the last 10 minutes), null when the tunnel is not live
    or no agent runs."""
    objects = [status.to_json() for status in statuses]
    if name is not None and objects:
        history = None
        if running:
            from tunnel_tui.agent.client import AgentClient
            from tunnel_tui.core.errors import TunnelTuiError

            try:
                history = AgentClient(home).history(name)
            except TunnelTuiError:  # an agent without history (older), or just stopped
                history = None
        objects[0]["history"] = history
    return objects
