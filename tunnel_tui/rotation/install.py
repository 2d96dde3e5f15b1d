"""Step `install`: the new key's line onto every target's authorized_keys, through the
old key (SFTP, else an exec session; engine.authorized_keys). Where the account allows
neither — `--manual`, a forced command, or a restricted line (`key show --restricted`,
`command="/bin/false"`) — the line is shown and rotation waits until it works."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tunnel_tui.core import keys as keys_mod
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.formatting import duration_words, local_clock
from tunnel_tui.core.model import Key
from tunnel_tui.core.rotation_record import Stage
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.engine.authorized_keys import ManualInstallRequired
from tunnel_tui.rotation.context import Clock, Rotation, crash_hook, join, key_line
from tunnel_tui.rotation.targets import Target
from tunnel_tui.rotation.waiting import poll_until

_WHY_MANUAL = (
    "the key's line there is restricted (as `key show --restricted` gives: no shell, no "
    "SFTP) or runs a forced command, so rotation cannot edit authorized_keys through it; "
    "add the line shown next"
)


async def add_new_line(run: Rotation, target: Target, new_key: Key) -> str:
    """Add the new key's line (with the old line's options) through the old key; the
    method used (sftp, exec). Raises ManualInstallRequired where neither is allowed."""
    old = run.catalog.key(run.rec.old_key_id)
    return await run.keys.add_line(run.hops(target, old.id, old.id), key_line(new_key),
                                   old.public_key)


def manual_line(run: Rotation, new_key: Key) -> tuple[str, str]:
    """The line a person pastes for a manual install, and a note about its form.

    The connections still use the old key at this point, so the old key's targets are
    the new key's: the line is restricted to them (`key show --restricted` gives the
    same). The plain form stays one command away for a bastion account used otherwise.
    """
    try:
        targets = run.catalog.restrict_targets(run.rec.old_key_id)
    except TunnelTuiError:
        targets = []
    if not targets:
        return key_line(new_key), ""
    comment = f"tunnel-tui:{new_key.name}"
    line = keys_mod.authorized_keys_line(new_key.public_key, comment, targets)
    allowed = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in targets)
    note = (
        f"the line allows only tunnels to {allowed}; for an unrestricted line: "
        f"tunnel-tui key show --key {new_key.name}. "
    )
    return line, note


async def wait_for_manual_add(
    run: Rotation, clock: Clock, target: Target, new_key: Key
) -> AsyncIterator[StepResult]:
    """Show the line to paste, then poll a login with the new key until it works."""
    line, note = manual_line(run, new_key)
    server = target.path[-1]
    where = f"~{server.user}/.ssh/authorized_keys on {server.host}:{server.port}"
    wait, every = run.options.wait_seconds, run.options.poll_interval
    yield clock.running(
        f"add this line to {where}: {line}",
        f"{note}Waiting up to {duration_words(wait)}, checking every {every:g} s",
    )
    rotating = server.key_id or ""

    async def added() -> bool:
        return await run.login_works(target, rotating, new_key.id)

    if run.hand_off is not None:  # --background: the agent waits; this run stops here
        try:
            if await added():
                return
        except TunnelTuiError:
            pass
        new_secret = run.keys.secret_for_agent(new_key.id)
        until = await run.hand_off(run.conn_name, run.rec.old_key_id, new_key.id, new_secret,
                                   wait)
        run.handed_off = True
        yield clock.running(
            f"the agent waits for the new key on {target.display} until "
            f"{local_clock(until)} and notifies when it is in",
            f"add the line above, then run `tunnel-tui rotate-key {run.conn_name}` to "
            "finish (it resumes here); the old key keeps working meanwhile",
        )
        return

    async for row in poll_until(
        clock,
        added,
        waiting_for=f"the new key on {target.display}",
        wait_seconds=wait,
        poll_interval=every,
        timeout_detail=f"the new key was not installed on {target.display} in time",
        timeout_hint="add the line, then run rotate-key again (the old key still works)",
    ):
        yield row


async def install(run: Rotation) -> AsyncIterator[StepResult]:
    if run.rec.stage is not Stage.STORED:
        return
    clock = Clock("install")
    record = run.with_current_targets()
    new_key = run.catalog.key(record.new_key_id)
    targets = run.targets()
    for display in record.pending_install:
        target = targets.get(display)
        if target is None:  # no connection goes there any more
            record = record.mark_installed(display, "none")
            continue
        method = ""
        if not run.options.manual:
            try:
                method = await add_new_line(run, target, new_key)
            except ManualInstallRequired as exc:
                yield clock.running(f"{exc.message}; continuing as --manual", _WHY_MANUAL)
            except TunnelTuiError as exc:
                yield clock.fail(exc.message, exc.hint)
                return
        if not method:
            async for row in wait_for_manual_add(run, clock, target, new_key):
                yield row
                if row.status is StepStatus.FAIL or run.handed_off:
                    return
            method = "manual"
        record = run.save(record.mark_installed(display, method))
    record = run.save(record.advance(Stage.INSTALLED))
    yield clock.ok(f"new key authorized on {join(record.targets)} ({record.method or 'none'})")
    crash_hook(Stage.INSTALLED)
