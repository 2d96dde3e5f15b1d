"""Step `cleanup`: the old private key leaves the secret store once nothing uses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tunnel_tui.core.errors import NotFoundError
from tunnel_tui.core.rotation_record import Stage
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation.context import Clock, Rotation, crash_hook, join


async def cleanup(run: Rotation) -> AsyncIterator[StepResult]:
    if run.rec.stage is not Stage.REMOVED_REMOTE:
        return
    clock = Clock("cleanup")
    record = run.rec
    users = run.catalog.users_of(record.old_key_id)
    if users:
        detail = f"old key kept: still used by {join(users)}"
    else:
        try:
            await asyncio.to_thread(run.catalog.delete_key, record.old_key_id)
            detail = "old private key deleted from the secret store"
        except NotFoundError:
            detail = "old private key already deleted"
    record = run.save(record.advance(Stage.DONE))
    yield clock.ok(f"{detail}; connections touched: {join(record.connections)}")
    crash_hook(Stage.DONE)
