"""A tunnel's recent history as the agent reports it (`status NAME --json`'s
`history`, agent/history.py): per-second bytes in/out and live channels for the last
10 minutes, and its reconnects. Pure data, for the TUI's sparklines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reconnect:
    time: str  # ISO 8601 UTC, when the tunnel went down
    cause: str
    downtime: float | None  # seconds; None: back within one sample, not measured


@dataclass(frozen=True)
class TunnelHistory:
    interval: float = 1.0
    bytes_in: tuple[int, ...] = ()
    bytes_out: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    reconnects: tuple[Reconnect, ...] = field(default=())
    reconnecting_since: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TunnelHistory:
        def ints(key: str) -> tuple[int, ...]:
            return tuple(int(v) for v in data.get(key) or () if isinstance(v, int | float))

        reconnects = tuple(
            Reconnect(str(r.get("time", "")), str(r.get("cause", "")),
                      float(r["downtime"]) if isinstance(r.get("downtime"), int | float)
                      else None)
            for r in data.get("reconnects") or () if isinstance(r, dict)
        )
        since = data.get("reconnecting_since")
        return cls(float(data.get("interval") or 1.0), ints("bytes_in"), ints("bytes_out"),
                   ints("channels"), reconnects, since if isinstance(since, str) else None)
