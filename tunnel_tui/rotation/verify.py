"""Step `verify`: a fresh connection with only the new key, on every target. A server
that rejects it rolls the rotation back (the old key never stopped working)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.rotation_record import Stage
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation.context import Clock, Rotation, crash_hook, join
from tunnel_tui.rotation.rollback import undo


async def verify(run: Rotation) -> AsyncIterator[StepResult]:
    if run.rec.stage is not Stage.INSTALLED:
        return
    clock = Clock("verify")
    record = run.rec
    targets = run.targets()
    for display in record.targets:
        target = targets.get(display)
        if target is None:
            continue
        try:
            ok = await run.login_works(target, record.key_in_use(), record.new_key_id)
        except TunnelTuiError as exc:
            yield clock.fail(exc.message, exc.hint)
            return
        if not ok:
            undone = await undo(run)
            yield clock.fail(
                f"{display} rejects the new key; rolled back ({undone}), the old key stays in use",
                "check the bastion's AuthorizedKeysFile and ~/.ssh permissions, then "
                "run rotate-key again",
            )
            return
    record = run.save(record.advance(Stage.VERIFIED))
    yield clock.ok(f"a fresh connection with only the new key works on {join(record.targets)}")
    crash_hook(Stage.VERIFIED)
