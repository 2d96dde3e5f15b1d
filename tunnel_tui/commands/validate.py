"""`validate NAME [--json] [--accept-host-key SHA256:…]... [--accept-new-host-key]
[--wait-for-key MINUTES]`.

People get the live log (✓ ok, ✕ fail with "→ hint", · skip); `--json` prints one
JSON object per step (JSON Lines). Exit 0 iff no step failed, 1 otherwise, 2 for
bad input. An unknown host key is asked about on a TTY (fingerprint shown);
otherwise validation fails and prints the fingerprint, to be passed back with
`--accept-host-key` once checked (that key, and only it, is then trusted).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from tunnel_tui.actions import validate as actions
from tunnel_tui.actions.validate import MAX_WAIT_MINUTES
from tunnel_tui.commands.completion import connection_names
from tunnel_tui.commands.prompts import cli_session
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.steps import StepResult, StepStatus

_MARKS = {StepStatus.OK: "✓", StepStatus.FAIL: "✕", StepStatus.SKIP: "·",
          StepStatus.RUNNING: "…"}


def render_step(result: StepResult) -> str:
    """One row of the live log (and its hint), as UI.md's validation log shows it."""
    mark = _MARKS[result.status]
    if result.status is StepStatus.SKIP:
        line = f"{mark} {result.step:<10} {'skip':>8}"
    else:
        line = f"{mark} {result.step:<10} {result.elapsed_ms:>5.0f} ms"
    if result.detail:  # server text (a database's error...): controls shown escaped
        line += f"  {terminal_text(result.detail)}"
    if result.hint and result.status in (StepStatus.FAIL, StepStatus.RUNNING):
        line += f"\n  → {terminal_text(result.hint)}"
    return line


async def _validate(
    name: str, as_json: bool, accept_new: bool, wait_seconds: float, interactive: bool,
    accept_keys: frozenset[str] = frozenset(),
) -> bool:
    async def ask(hop: str, fingerprint: str) -> bool:
        click.echo(
            f"The host key of {hop} is not known yet.\n"
            f"  fingerprint: {fingerprint}\n"
            "Compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub "
            "on it).",
            err=True,
        )
        answer: bool = await asyncio.to_thread(
            click.confirm, "Trust this key and save it?", default=False, err=True
        )
        return answer

    ok = True
    last_running = ""
    async for result in actions.validate(
        cli_session(), name, accept_new_host_key=accept_new, accept_host_keys=accept_keys,
        wait_for_key_seconds=wait_seconds, on_host_key=ask if interactive else None,
    ):
        if result.status is StepStatus.FAIL:
            ok = False
        if result.status is StepStatus.RUNNING:
            # Progress (waiting for the key): to stderr in --json mode, shown once per hint.
            text = render_step(result)
            if as_json:
                click.echo(text.split("\n")[0], err=True)
            else:
                click.echo(text if result.hint != last_running else text.split("\n")[0])
            last_running = result.hint or ""
            continue
        if as_json:
            click.echo(json.dumps(result.to_json(), ensure_ascii=False))
        else:
            click.echo(render_step(result))
    return ok


@click.command(name="validate")
@click.argument("name", shell_complete=connection_names)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per step (JSON Lines).")
@click.option("--accept-host-key", "accept_host_keys", multiple=True, metavar="SHA256:…",
              help="Trust an unknown host key with exactly this fingerprint (the one you "
                   "checked with the server's admin) and save it. Once per hop.")
@click.option("--accept-new-host-key", is_flag=True,
              help="Trust ANY unknown host key and save it (for scripts; prefer "
                   "--accept-host-key).")
@click.option("--wait-for-key", "wait_minutes", type=float, default=0.0, metavar="MINUTES",
              help=f"Keep retrying SSH auth while the key is installed (up to "
                   f"{MAX_WAIT_MINUTES}).")
def validate(
    name: str, as_json: bool, accept_host_keys: tuple[str, ...], accept_new_host_key: bool,
    wait_minutes: float,
) -> Any:
    """Check a connection step by step: config, keyring, resolve, tcp, host-key,
    ssh-auth, channel, db-tls, db-auth, query. Exit 0 iff no step failed.

    \b
    --json prints one object per step:
      {"step": "ssh-auth", "status": "ok|fail|skip", "elapsed_ms": 40.1,
       "detail": "...", "hint": "..." or null}
    """
    wait_seconds = actions.check_wait_minutes(wait_minutes)
    from tunnel_tui.core.known_hosts import parse_fingerprints

    accept_keys = parse_fingerprints(accept_host_keys)
    from tunnel_tui.actions.runner import run

    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    ok = run(_validate(name, as_json, accept_new_host_key, wait_seconds, interactive, accept_keys))
    sys.exit(0 if ok else 1)
