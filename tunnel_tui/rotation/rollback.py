"""Undo a rotation that has not switched yet: the new line off the servers it reached,
the new key deleted, the record dropped. The old key was in use all along."""

from __future__ import annotations

import asyncio
import logging

from tunnel_tui.core.errors import NotFoundError, TunnelTuiError
from tunnel_tui.core.rotation_record import RollbackAction
from tunnel_tui.rotation.context import Rotation

log = logging.getLogger(__name__)


async def _remove_new_lines(run: Rotation) -> None:
    record = run.rec
    new_public = run.catalog.key(record.new_key_id).public_key
    targets = run.targets()
    for display in record.installed_on:
        target = targets.get(display)
        if target is None:
            continue
        hops = run.hops(target, record.old_key_id, record.old_key_id)
        try:
            (outcome,) = await run.keys.remove_lines(hops, [new_public])
        except TunnelTuiError as exc:
            log.warning("rollback on %s: %s", display, exc.message)
            continue
        if outcome.error is not None:
            log.warning("rollback on %s: %s", display, outcome.error)


async def undo(run: Rotation) -> str:
    """Run the record's rollback plan; what was done, for the user."""
    record = run.rec
    done: list[str] = []
    for action in record.rollback_plan():
        if action is RollbackAction.REMOVE_NEW_REMOTE:
            await _remove_new_lines(run)
            done.append("new line removed")
        elif action is RollbackAction.DELETE_NEW_KEY:
            try:
                await asyncio.to_thread(run.catalog.delete_key, record.new_key_id)
            except NotFoundError:
                pass
            done.append("new key deleted")
        else:
            run.drop()
    return ", ".join(done) or "nothing to undo"
