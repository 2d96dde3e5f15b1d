"""Desktop alerts for tunnels that fail while nobody watches: best-effort, never
blocking, and only where a desktop session can show them."""

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
    binary = shutil.which("notify-send")
    if binary is None or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return
    body = redact(status.last_error or "the tunnel failed")
    if status.hint:
        body += "\n" + redact(status.hint)
    task = asyncio.get_running_loop().create_task(
        _send(binary, f"tunnel-tui: {status.name} failed", body)
    )
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _send(binary: str, title: str, body: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            binary,
            "--app-name=tunnel-tui",
            "--urgency=critical",
            title,
            body,
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
