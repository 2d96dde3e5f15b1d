"""Waiting for a person: poll a check until it holds, with progress rows and a deadline.

Used where rotation cannot edit authorized_keys itself (`--manual`, or a restricted
key's line): while someone adds the new line, and later removes the old one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation.context import Clock

log = logging.getLogger(__name__)


async def poll_until(
    clock: Clock,
    done: Callable[[], Awaitable[bool]],
    *,
    waiting_for: str,
    wait_seconds: float,
    poll_interval: float,
    timeout_detail: str,
    timeout_hint: str,
) -> AsyncIterator[StepResult]:
    """Try `done` every `poll_interval` s; a RUNNING row ("... N s left") per try, and
    one FAIL row when `wait_seconds` pass first. Returns quietly once `done` holds."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if await done():
                return
        except TunnelTuiError as exc:  # the bastion restarting, say: keep waiting
            log.info("while waiting for %s: %s", waiting_for, exc.message)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            yield clock.fail(timeout_detail, timeout_hint)
            return
        yield clock.running(f"waiting for {waiting_for}: {int(remaining)} s left")
        await asyncio.sleep(min(poll_interval, remaining))
