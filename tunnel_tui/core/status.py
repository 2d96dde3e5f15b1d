"""Tunnel states and the status object shared by the engine, the agent, the CLI and the TUI.

`TunnelStatus.to_json()` is the `status --json` contract of DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class TunnelState(StrEnum):
    CONNECTING = "connecting"
    UP = "up"
    RECONNECTING = "reconnecting"
    # `up --wait-for-key`: the agent retries until the bastion accepts the key or
    # `wait_until` passes (then `failed`). Between `connecting` and `up`.
    WAITING_FOR_KEY = "waiting-for-key"
    # No secret to (re)connect with: an ssh-agent socket that is gone, or autostart
    # without a secret. Not retried; `hint` says what brings it back.
    WAITING_FOR_SECRET = "waiting-for-secret"
    FAILED = "failed"
    DOWN = "down"


@dataclass(frozen=True)
class TunnelStatus:
    name: str
    state: TunnelState
    local_host: str
    local_port: int | None
    bastion: str  # "user@host:port"
    target: str  # "host:port" as the bastion sees it
    since: datetime | None = None  # UTC, when the current state began
    bytes_in: int = 0  # from the database to local clients
    bytes_out: int = 0
    channels: int = 0
    reconnects: int = 0
    last_error: str | None = None
    hint: str | None = None
    wait_until: datetime | None = None  # UTC: when a wait (for the key) gives up

    def to_json(self) -> dict[str, Any]:
        # Field by field: dataclasses.asdict deep-copies every value, 16x slower, and
        # `status --json` turns 100 of these into JSON twice (agent, then CLI).
        data = {name: getattr(self, name) for name in _FIELDS}
        data["state"] = self.state.value
        data["since"] = _iso(self.since)
        data["wait_until"] = _iso(self.wait_until)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TunnelStatus:
        return cls(
            name=data["name"],
            state=TunnelState(data["state"]),
            local_host=data.get("local_host", "127.0.0.1"),
            local_port=data.get("local_port"),
            bastion=data.get("bastion", ""),
            target=data.get("target", ""),
            since=_parse_iso(data.get("since")),
            bytes_in=int(data.get("bytes_in", 0)),
            bytes_out=int(data.get("bytes_out", 0)),
            channels=int(data.get("channels", 0)),
            reconnects=int(data.get("reconnects", 0)),
            last_error=data.get("last_error"),
            hint=data.get("hint"),
            wait_until=_parse_iso(data.get("wait_until")),
        )


_FIELDS = tuple(f.name for f in fields(TunnelStatus))  # in order: the JSON's key order


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
