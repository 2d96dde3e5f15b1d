"""Step `check`: before anything is written, every server is reachable and accepts the
key in use. A bastion that does not resolve, refuses or rejects the key stops here."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tunnel_tui.core.errors import TunnelTuiError, UsageError
from tunnel_tui.core.model import Key
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation.context import Clock, Rotation, join


def ensure_rotatable(key: Key) -> None:
    """Refuse (UsageError, exit 2, nothing written) a key rotation cannot replace.

    THE single place that decides it. A key held in the user's ssh-agent (DESIGN.md,
    `--ssh-agent`; a security key's too) is not ours to replace: we never held its
    private half, so we cannot generate its successor or know where else it is used.
    """
    if key.in_agent:
        raise UsageError(
            f"the key {key.name!r} lives in your ssh-agent, and tunnel-tui does not own "
            "it, so it cannot rotate it",
            field="key",
            hint="rotate it where it lives (ssh-keygen, your token or password manager), "
            "add the new public key to the bastion, ssh-add it, then: tunnel-tui edit "
            "NAME --ssh-agent --key-fingerprint SHA256:...",
        )


async def check(run: Rotation) -> AsyncIterator[StepResult]:
    clock = Clock("check")
    key_id = run.record.key_in_use() if run.record else run.catalog.get(run.conn_name).key_id
    try:
        targets = run.targets_of({key_id})
        for display, target in targets.items():
            if not await run.login_works(target, key_id, key_id):
                name = run.catalog.key(key_id).name
                yield clock.fail(
                    f"{display} rejects the key in use ({name}); nothing was changed",
                    f"the current key must log in to install its successor: "
                    f"run tunnel-tui validate {run.conn_name} and fix what it reports",
                )
                return
    except TunnelTuiError as exc:
        hint = exc.hint or f"run tunnel-tui validate {run.conn_name}"
        yield clock.fail(f"{exc.message}; nothing was changed", hint)
        return
    yield clock.ok(f"{join(targets)} reachable, the key in use is accepted")
