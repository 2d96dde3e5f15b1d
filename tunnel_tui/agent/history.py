"""What a tunnel did lately: per live tunnel, the last 10 minutes of per-second bytes in
and out and live channels, and its reconnects (when, why, how long it was down).

Sampled from the tunnel statuses once a second; in memory only (never on disk), and
forgotten when the tunnel goes down. `status NAME --json` carries it as `history`; the
TUI draws it as sparklines. The shape (`to_json`) is `core.history.TunnelHistory`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tunnel_tui.core.status import TunnelState, TunnelStatus

log = logging.getLogger("tunnel_tui.agent")

WINDOW = 600  # samples: 10 minutes at one a second
INTERVAL = 1.0
MAX_RECONNECTS = 50
_GONE = (TunnelState.DOWN, TunnelState.FAILED)


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class _Track:
    bytes_in: deque[int] = field(default_factory=lambda: deque(maxlen=WINDOW))
    bytes_out: deque[int] = field(default_factory=lambda: deque(maxlen=WINDOW))
    channels: deque[int] = field(default_factory=lambda: deque(maxlen=WINDOW))
    reconnects: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_RECONNECTS))
    last_in: int = 0  # a new tunnel's counters start at 0: its first sample has it all
    last_out: int = 0
    down_since: float | None = None
    cause: str | None = None
    started: float = 0.0
    last_reconnects: int | None = None


class History:
    """The ring buffers of one agent; `statuses()` is the service's current view."""

    def __init__(
        self,
        statuses: Callable[[], Iterable[TunnelStatus]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._statuses = statuses
        self._clock = clock
        self._tracks: dict[str, _Track] = {}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        """One sample of every live tunnel (call once per INTERVAL)."""
        now = self._clock()
        seen: set[str] = set()
        for status in self._statuses():
            if status.state in _GONE:
                continue
            seen.add(status.name)
            track = self._tracks.get(status.name)
            if track is None:
                track = self._tracks[status.name] = _Track(started=now)
            track.bytes_in.append(_delta(track.last_in, status.bytes_in))
            track.bytes_out.append(_delta(track.last_out, status.bytes_out))
            track.channels.append(status.channels)
            track.last_in, track.last_out = status.bytes_in, status.bytes_out
            self._note_reconnect(track, status, now)
        for name in [n for n in self._tracks if n not in seen]:
            del self._tracks[name]  # down (or failed for good): its history goes with it

    @staticmethod
    def _note_reconnect(track: _Track, status: TunnelStatus, now: float) -> None:
        missed = (
            track.last_reconnects is not None
            and status.reconnects > track.last_reconnects
            and track.down_since is None
            and status.state is TunnelState.UP
        )
        track.last_reconnects = status.reconnects
        if missed:  # down and back between two samples: under a second, not measured
            track.reconnects.append({
                "time": _iso(status.since.timestamp() if status.since else now),
                "cause": status.last_error or "connection lost",
                "downtime": None,
            })
        elif status.state is TunnelState.RECONNECTING:
            if track.down_since is None:
                track.down_since = now
            track.cause = status.last_error or track.cause
        elif status.state is TunnelState.UP and track.down_since is not None:
            track.reconnects.append({
                "time": _iso(track.down_since),
                "cause": track.cause or "connection lost",
                "downtime": round(now - track.down_since, 1),
            })
            track.down_since, track.cause = None, None

    def to_json(self, name: str) -> dict[str, Any] | None:
        """NAME's history, or None when it is not live (or not sampled yet)."""
        track = self._tracks.get(name)
        if track is None:
            return None
        return {
            "interval": INTERVAL,
            "window": WINDOW,
            "bytes_in": list(track.bytes_in),
            "bytes_out": list(track.bytes_out),
            "channels": list(track.channels),
            "reconnects": list(track.reconnects),
            "reconnecting_since": _iso(track.down_since) if track.down_since else None,
        }

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                self.sample()
            except Exception:  # a bug must cost a sample, never the agent
                log.exception("sampling the tunnel history failed")
            next_at += INTERVAL
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _delta(before: int, now: int) -> int:
    """Bytes since the last sample (a counter that went back restarted from 0)."""
    return now - before if now >= before else now
