"""Tunnels that are always there: connections marked `autostart` come up when the
agent starts (with `tunnel-tui service install`, at login or boot).

Nobody called, so the agent reads the secrets itself (its own Secret Service through
the user manager's D-Bus, or the vault once unlocked). Without them the tunnel sits in
`waiting-for-secret` with a hint naming what unlocks it, and comes up as soon as the
vault is unlocked in the agent or someone runs `tunnel-tui up NAME` — never failing
silently. A bastion that is not reachable yet is retried with the usual capped,
jittered backoff (`TUNNEL_TUI_AUTOSTART_CAP`, 30 s); a rejected key or a host key
problem is a failure like any other (no loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import TYPE_CHECKING

from tunnel_tui.agent.snapshot import down_status
from tunnel_tui.core.errors import SecretStoreError, TunnelTuiError
from tunnel_tui.core.ssh_agent import AgentUnavailable
from tunnel_tui.core.status import TunnelState, TunnelStatus

if TYPE_CHECKING:
    from tunnel_tui.agent.service import TunnelService

log = logging.getLogger("tunnel_tui.agent")

DEFAULT_CAP = 30.0
FIRST_DELAY = 0.5
ACTIVE = (TunnelState.UP, TunnelState.CONNECTING, TunnelState.RECONNECTING)


class Autostart:
    def __init__(self, service: TunnelService) -> None:
        self._service = service
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, TunnelStatus] = {}  # shown while not up yet
        self._wake = asyncio.Event()
        try:
            cap = float(os.environ.get("TUNNEL_TUI_AUTOSTART_CAP", DEFAULT_CAP))
        except ValueError:
            cap = DEFAULT_CAP
        self.cap = max(cap, 0.05)

    def start(self) -> list[str]:
        """Begin bringing every autostart connection up; their names."""
        try:
            connections = self._service.connections()
        except TunnelTuiError as exc:
            log.warning("autostart skipped: %s", exc.message)
            return []
        names = [c.name for c in connections.values() if c.autostart]
        loop = asyncio.get_running_loop()
        for name in names:
            if name not in self._tasks and self._service.waits.status(name) is None:
                self._tasks[name] = loop.create_task(self._run(name))
        if names:
            log.info("autostart: %s", ", ".join(names))
        return names

    def status(self, name: str) -> TunnelStatus | None:
        """While an autostart tunnel is not up yet: why (waiting-for-secret, retrying)."""
        pending = self._pending.get(name)
        if pending is None:
            return None
        live = self._service._live().get(name)
        return None if live is not None and live.state in ACTIVE else pending

    def wake(self) -> None:
        """Secrets may be there now (the vault was unlocked): try again at once."""
        self._wake.set()
        self._wake = asyncio.Event()  # each sleeper saw the one it waits on

    async def cancel(self, name: str) -> None:
        """`down NAME`: stop trying until the next agent start."""
        self._pending.pop(name, None)
        task = self._tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def aclose(self) -> None:
        for name in list(self._tasks):
            await self.cancel(name)

    async def _run(self, name: str) -> None:
        from tunnel_tui.agent.service import CallerSecrets
        from tunnel_tui.engine.reconnect import backoff_delay

        service = self._service
        tries = 0
        try:
            while True:
                conn = service.connections().get(name)
                if conn is None or not conn.autostart:
                    return
                try:
                    status = await service.up(
                        name, secrets=CallerSecrets(no_keys="autostart: nobody called")
                    )
                except SecretStoreError as exc:
                    hint = (
                        f"tunnel-tui up {name} from a terminal with your ssh-agent"
                        if isinstance(exc, AgentUnavailable)  # its key lives in an ssh-agent
                        else f"tunnel-tui up {name} (from a terminal with your keyring), "
                        "or tunnel-tui vault unlock"
                    )
                    self._set(dataclasses.replace(
                        down_status(conn), state=TunnelState.WAITING_FOR_SECRET,
                        last_error=f"autostart: {exc.message}", hint=hint,
                    ))  # fmt: skip
                    await self._sleep(self.cap)
                    continue
                except TunnelTuiError as exc:
                    if getattr(exc, "permanent", False):
                        log.warning("autostart of %s failed: %s", name, exc.message)
                        self._pending.pop(name, None)
                        service._alert_failure(name)
                        return
                    self._set(dataclasses.replace(
                        down_status(conn), state=TunnelState.CONNECTING,
                        last_error=exc.message,
                        hint="autostart: the agent keeps trying by itself",
                    ))  # fmt: skip
                    await self._sleep(backoff_delay(tries, FIRST_DELAY, self.cap))
                    tries += 1
                    continue
                self._pending.pop(name, None)
                log.info("autostart: %s %s", name, status.state.value)
                return
        finally:
            if self._tasks.get(name) is asyncio.current_task():
                del self._tasks[name]

    def _set(self, status: TunnelStatus) -> None:
        self._pending[status.name] = status
        self._service._failures.pop(status.name, None)
        self._service._publish(status)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
