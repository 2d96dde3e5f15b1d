"""Step `remove-old`: the old key's line off every target, through the new key (lines
matched by key; every other line and its options untouched). Where the new key cannot
edit the file (a restricted line, a forced command), the user is asked to remove the old
line, and the step ends only once the server rejects the old key."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tunnel_tui.core.errors import NotFoundError, TunnelTuiError
from tunnel_tui.core.formatting import duration_words
from tunnel_tui.core.rotation_record import Stage
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.engine.authorized_keys import ManualInstallRequired
from tunnel_tui.rotation.context import Clock, Rotation, crash_hook, join
from tunnel_tui.rotation.targets import Target
from tunnel_tui.rotation.waiting import poll_until


async def _remove_line(run: Rotation, target: Target, old_public: str) -> None:
    new_id = run.rec.new_key_id
    (outcome,) = await run.keys.remove_lines(run.hops(target, new_id, new_id), [old_public])
    if outcome.manual:
        raise ManualInstallRequired(outcome.error or "neither SFTP nor a shell", hint=outcome.hint)
    if outcome.error is not None:
        raise TunnelTuiError(outcome.error, hint=outcome.hint)


async def wait_for_manual_removal(
    run: Rotation, clock: Clock, target: Target, old_public: str, why: str
) -> AsyncIterator[StepResult]:
    """Ask for the old line to go, then poll until the server rejects the old key."""
    record = run.rec
    server = target.path[-1]
    where = f"~{server.user}/.ssh/authorized_keys on {server.host}:{server.port}"
    wait, every = run.options.wait_seconds, run.options.poll_interval
    yield clock.running(
        f"remove the line of this key from {where}: {old_public}",
        f"{why}; waiting up to {duration_words(wait)} until the old key is rejected, "
        f"checking every {every:g} s",
    )

    async def removed() -> bool:
        return not await run.login_works(target, record.new_key_id, record.old_key_id)

    async for row in poll_until(
        clock,
        removed,
        waiting_for=f"the old key to be rejected by {target.display}",
        wait_seconds=wait,
        poll_interval=every,
        timeout_detail=f"{target.display} still accepts the old key",
        timeout_hint=f"remove the line from {where}, then run rotate-key again "
        f"(the new key is in use): {old_public}",
    ):
        yield row


def _old_public_key(run: Rotation) -> str | None:
    try:
        return run.catalog.key(run.rec.old_key_id).public_key
    except NotFoundError:
        return None


async def remove_old(run: Rotation) -> AsyncIterator[StepResult]:
    if run.rec.stage is not Stage.SWITCHED:
        return
    clock = Clock("remove-old")
    old_public = _old_public_key(run)
    targets = run.targets()
    for display in run.rec.pending_removal:
        target = targets.get(display)
        if target is not None and old_public is not None:
            try:
                await _remove_line(run, target, old_public)
            except ManualInstallRequired as exc:
                waited = wait_for_manual_removal(run, clock, target, old_public, exc.message)
                async for row in waited:
                    yield row
                    if row.status is StepStatus.FAIL:
                        return
            except TunnelTuiError as exc:
                yield clock.fail(exc.message, exc.hint)
                return
        run.save(run.rec.mark_removed(display))
    record = run.save(run.rec.advance(Stage.REMOVED_REMOTE))
    yield clock.ok(f"old key's line removed from {join(record.targets)}")
    crash_hook(Stage.REMOVED_REMOTE)
