"""Desktop alerts for tunnels that fail while nobody watches, and for a tunnel that
came up once its key was accepted: best-effort, never blocking, and only where a
desktop session can show them."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil

from tunnel_tui.core.logging import redact
from tunnel_tui.core.status import TunnelStatus

log = logging.getLogger("tunnel_tui.agent")
_tasks: set[asyncio.Task[None]] = set()


def alert_failure(status: TunnelStatus) -> None:
    """Schedule a `notify-send` for a failed tunnel (no-op without one or without D-Bus)."""
    body = redact(status.last_error or "the tunnel failed")
    if status.hint:
        body += "\n" + redact(status.hint)
    _notify(f"tunnel-tui: {status.name} failed", body, "critical")


def alert_up(status: TunnelStatus) -> None:
    """"NAME is up": the key was accepted while nobody watched (same channel)."""
    body = f"{status.local_host}:{status.local_port}"
    if status.last_error:
        body += "\n" + redact(status.last_error)
    _notify(f"tunnel-tui: {status.name} is up", body, "normal")


def notify_command(title: str, body: str, urgency: str) -> list[str] | None:
    """The notify-send command line, or None where no desktop can show it."""
    binary = shutil.which("notify-send")
    if binary is None or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    return [binary, "--app-name=tunnel-tui", f"--urgency={urgency}", title, body]


def notify(title: str, body: str, urgency: str = "normal") -> None:
    """Schedule one desktop notification (a no-op where none can be shown)."""
    _notify(title, body, urgency)


def _notify(title: str, body: str, urgency: str) -> None:
    command = notify_command(title, body, urgency)
    if command is None:
        return
    task = asyncio.get_running_loop().create_task(_send(command))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _send(command: list[str]) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        log.debug("notify-send failed to start: %s", exc)
        return
    try:
        await asyncio.wait_for(process.wait(), 5.0)
    except TimeoutError:
        process.kill()
        await process.wait()
