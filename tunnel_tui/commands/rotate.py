"""`rotate-key NAME`: replace a connection's key with zero downtime.

Human output is the step list with times (like `validate`); `--json` prints one JSON
object per step per line (StepResult.to_json(), plus running rows while waiting).
Exit 0 when every step passed, 1 when one failed (running again resumes), 2 for bad
input (unknown name, bad flag; nothing changed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING

import click

from tunnel_tui.commands.completion import connection_names
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.steps import StepResult, StepStatus

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.catalog import Catalog

_MARK = {
    StepStatus.OK: "ok",
    StepStatus.FAIL: "FAIL",
    StepStatus.SKIP: "skip",
    StepStatus.RUNNING: "...",
}
# Progress rows while waiting for a manual install: at most one line this often.
_PROGRESS_EVERY = 30.0


def _human(row: StepResult) -> str:
    detail = terminal_text(row.detail)  # may quote the bastion: controls shown escaped
    text = f"  {_MARK[row.status]:<5}{row.step:<11}{row.elapsed_ms / 1000:>7.1f}s  {detail}"
    if row.hint:
        text += f"\n{'':18}hint: {terminal_text(row.hint)}"
    return text


def _session() -> tuple[Session, Catalog]:
    """The CLI's session (keyring, else the vault the agent holds: then the agent runs
    the SSH steps, else the vault asked for here), and its catalog."""
    from tunnel_tui.commands.prompts import cli_session

    session = cli_session()
    return session, session.catalog()


async def _run(
    name: str,
    *,
    as_json: bool,
    manual: bool,
    key_type: str | None,
    wait_seconds: float,
    poll_interval: float,
    background: bool = False,
) -> bool:
    from tunnel_tui.actions import rotate

    session, catalog = _session()
    ok = True
    last_progress = 0.0
    async for row in rotate.rotate(
        session,
        name,
        manual=manual,
        key_type=key_type,
        wait_seconds=wait_seconds,
        poll_interval=poll_interval,
        catalog=catalog,
        background=background,
    ):
        if row.status is StepStatus.FAIL:
            ok = False
        if as_json:
            click.echo(json.dumps(row.to_json(), ensure_ascii=False))
            continue
        if row.status is StepStatus.RUNNING and "s left" in row.detail:
            now = time.monotonic()
            if now - last_progress < _PROGRESS_EVERY:
                continue
            last_progress = now
        click.echo(_human(row))
    return ok


@click.command("rotate-key")
@click.argument("name", shell_complete=connection_names)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per step per line.")
@click.option(
    "--manual",
    is_flag=True,
    help="Do not edit authorized_keys: show the new key's line (restricted to the "
    "tunnels' targets, as key show --restricted) and wait until it works.",
)
@click.option(
    "--key-type",
    type=click.Choice(["ed25519", "rsa"]),
    default=None,
    help="Type of the new key (default: the old key's type).",
)
@click.option(
    "--wait-minutes",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="How long to wait for a manually installed key.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="How often to try the new key while waiting.",
)
@click.option(
    "--background",
    is_flag=True,
    help="Where it must wait for a manually installed key, the agent waits instead and "
    "notifies; this command returns (run it again to finish: it resumes).",
)
@click.option(
    "--rollback",
    is_flag=True,
    help="Undo an unfinished rotation instead (only before its switch step).",
)
def rotate_key(
    name: str,
    as_json: bool,
    manual: bool,
    key_type: str | None,
    wait_minutes: float,
    poll_seconds: float,
    background: bool,
    rollback: bool,
) -> None:
    """Rotate the key of connection NAME (and of every connection sharing it).

    \b
    Steps: check (bastions reachable, current key accepted; nothing written before),
    generate, store (keyring), install (SFTP, else exec, else shows the key and
    waits: a restricted key goes --manual), verify (fresh login with only the new
    key), switch (connections and live tunnels move to the new key), remove-old
    (the old line, matched by key, options of other lines untouched; a restricted
    key: asks you to remove it and waits until the old key is rejected), cleanup
    (old private key deleted when unused).
    Interrupted? Run the same command again: it resumes from the recorded step.
    """
    if rollback:
        from tunnel_tui.actions import rotate

        session, catalog = _session()
        done = asyncio.run(rotate.roll_back(session, name, catalog=catalog))
        if as_json:
            click.echo(json.dumps({"rolled_back": True, "detail": done}))
        else:
            click.echo(f"rotation of {name} rolled back: {done}")
        return
    ok = asyncio.run(
        _run(
            name,
            as_json=as_json,
            manual=manual,
            key_type=key_type,
            wait_seconds=wait_minutes * 60,
            poll_interval=poll_seconds,
            background=background,
        )
    )
    if not ok:
        # sys.exit, not ctx.exit: main() runs click with standalone_mode=False, where
        # ctx.exit's code is returned and lost.
        sys.exit(1)
