"""Leases: `exec` holds a tunnel for its child's lifetime (DESIGN.md, "exec").

`lease {name, pid}` records that the process PID (the `tunnel-tui exec` itself) needs
NAME; `release {lease_id}` ends that. A tunnel that was not up when its first lease
was taken belongs to the leases: it goes down when the last one ends. A tunnel that
was up before (or that someone brought up with a plain `up` meanwhile) stays up.

A lease whose process is gone (a crashed or SIGKILLed exec) is reaped within
`REAP_INTERVAL` seconds; the process's start time is recorded too, so a recycled pid
does not keep a lease alive. In memory only: a restarted agent has no tunnels either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tunnel_tui.core.errors import NotFoundError
from tunnel_tui.core.status import TunnelState

log = logging.getLogger("tunnel_tui.agent")

REAP_INTERVAL = 1.0
# Not wanted by anyone yet: the leases own a tunnel they find like this. Any other state
# (up, connecting, waiting for its key or a secret) is someone's: it stays after exec.
_NOT_WANTED = (TunnelState.DOWN, TunnelState.FAILED, None)


@dataclass(frozen=True)
class Lease:
    id: str
    name: str
    pid: int
    started: str | None  # the process's start time (/proc), None where unknown


def process_start(pid: int) -> str | None:
    """The start time of PID in clock ticks since boot (Linux), None elsewhere/gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 and fields[0] != b"Z" else None


def process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process now has that pid: ours is gone
    if started is None:
        return True
    return process_start(pid) == started


class Leases:
    """The leases of one agent. `state_of(name)` tells whether a tunnel is active now;
    `take_down(name)` takes one down (the service's `down`)."""

    def __init__(
        self,
        state_of: Callable[[str], TunnelState | None],
        take_down: Callable[[str], Awaitable[object]],
    ) -> None:
        self._state_of = state_of
        self._take_down = take_down
        self._leases: dict[str, Lease] = {}
        self._owned: set[str] = set()  # tunnels the leases brought up: down after the last
        self._files: dict[str, list[Path]] = {}  # lease id -> password files the agent wrote
        self._reaper: asyncio.Task[None] | None = None

    def take(self, name: str, pid: int) -> dict[str, object]:
        if pid <= 0:
            raise ValueError("pid must be positive")
        was_up = self._state_of(name) not in _NOT_WANTED
        if not self.of(name) and not was_up:
            self._owned.add(name)
        lease = Lease(f"l-{secrets.token_hex(8)}", name, pid, process_start(pid))
        self._leases[lease.id] = lease
        self._start_reaper()
        log.info("%s leased by pid %d (%s)", name, pid, "was up" if was_up else "exec's own")
        return {"lease_id": lease.id, "was_up": was_up, "owned": name in self._owned}

    def get(self, lease_id: str) -> Lease:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise NotFoundError(f"no lease {lease_id!r} (already released or reaped)")
        return lease

    def attach(self, lease_id: str, path: Path) -> None:
        """A file to delete when the lease ends (exec's password file, agent-written)."""
        self._files.setdefault(lease_id, []).append(path)

    def pin(self, name: str) -> None:
        """A plain `up NAME`: the tunnel is wanted beyond the leases."""
        self._owned.discard(name)

    async def release(self, lease_id: str) -> dict[str, object]:
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise NotFoundError(f"no lease {lease_id!r} (already released or reaped)")
        return {"down": await self._after(lease)}

    def of(self, name: str) -> list[Lease]:
        return [lease for lease in self._leases.values() if lease.name == name]

    async def _after(self, lease: Lease) -> bool:
        """Delete its files; take the tunnel down if this was its last lease and the
        leases brought it up."""
        for path in self._files.pop(lease.id, []):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self.of(lease.name) or lease.name not in self._owned:
            return False
        self._owned.discard(lease.name)
        log.info("%s: last lease ended, taking it down", lease.name)
        with contextlib.suppress(NotFoundError):
            await self._take_down(lease.name)
        return True

    async def reap(self) -> list[Lease]:
        """End the leases whose process is gone."""
        gone = [lease for lease in self._leases.values()
                if not process_alive(lease.pid, lease.started)]
        for lease in gone:
            self._leases.pop(lease.id, None)
            log.info("%s: lease of pid %d reaped (the process is gone)", lease.name, lease.pid)
            await self._after(lease)
        return gone

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def _reap_loop(self) -> None:
        while self._leases:
            await asyncio.sleep(REAP_INTERVAL)
            try:
                await self.reap()
            except Exception:  # a bug must not stop reaping for good
                log.exception("reaping leases failed")

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
