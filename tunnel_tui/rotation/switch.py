"""Step `switch`: every connection using the old key moves to the new one in the config,
and live tunnels move too (through the caller's SwitchKey callback: the agent, or an
engine in this process). Open sessions keep running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.rotation_record import Stage
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation.context import Clock, Rotation, crash_hook, join
from tunnel_tui.rotation.install import add_new_line

log = logging.getLogger(__name__)


async def _late_targets(run: Rotation, clock: Clock) -> AsyncIterator[StepResult]:
    """A connection added meanwhile may reach a server that lacks the new key: install
    and verify it there first, never switch it to a key that server would reject."""
    late = run.with_current_targets()
    targets = run.targets()
    new_key = run.catalog.key(late.new_key_id)
    for display in late.pending_install:
        try:
            method = await add_new_line(run, targets[display], new_key)
            if not await run.login_works(targets[display], late.old_key_id, new_key.id):
                raise TunnelTuiError(f"{display} rejects the new key")
        except TunnelTuiError as exc:
            yield clock.fail(
                f"{display} (added during the rotation): {exc.message}",
                exc.hint or "run rotate-key again",
            )
            return
        late = run.save(late.mark_installed(display, method))


async def _tell_live_tunnels(
    run: Rotation, old_id: str, new_id: str, secret: Secret | None
) -> str:
    """Move live tunnels to the new key; the rotation itself does not depend on it."""
    if run.switch is None:
        return "no agent"
    try:
        moved = await run.switch(old_id, new_id, secret)
    except (TunnelTuiError, OSError) as exc:
        log.warning("switching live tunnels failed: %s", exc)
        return "live tunnels could not switch; they reconnect with the new key"
    if moved is None:
        return "agent not running"
    return f"live tunnels moved: {join(moved)}" if moved else "no live tunnels"


async def switch(run: Rotation) -> AsyncIterator[StepResult]:
    if run.rec.stage is not Stage.VERIFIED:
        return
    clock = Clock("switch")
    async for row in _late_targets(run, clock):
        yield row
        return
    record = run.rec
    new_key = run.catalog.key(record.new_key_id)
    touched = await asyncio.to_thread(run.catalog.replace_key, record.old_key_id, new_key.id)
    names = sorted(set(record.connections) | set(touched))
    secret = run.keys.secret_for_agent(new_key.id)
    note = await _tell_live_tunnels(run, record.old_key_id, new_key.id, secret)
    run.save(record.advance(Stage.SWITCHED, connections=tuple(names)))
    verb = "uses" if len(names) == 1 else "use"
    yield clock.ok(f"{join(names)} now {verb} {new_key.name}; {note}")
    crash_hook(Stage.SWITCHED)
