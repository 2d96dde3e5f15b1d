"""actions.rotate, what the CLI and the TUI call: a stopped rotation is seen, resumed or
rolled back through the caller's session (real sshd, real keyring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.rotation.conftest import RotationWorld
from tests.rotation.helpers import openssh_login_works, stop_rotation_after, write_identity
from tunnel_tui.actions import rotate
from tunnel_tui.actions.session import Session
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.steps import StepStatus

pytestmark = pytest.mark.timeout(120)


async def test_stopped_before_the_switch_is_seen_and_rolled_back(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    before = server.authorized_keys_path.read_bytes()
    session = Session(world.home)
    assert rotate.stopped_rotation(session, "prod") is None

    stop_rotation_after("installed")

    stopped = rotate.stopped_rotation(session, "prod")
    assert stopped is not None
    assert (stopped.last_step, stopped.next_step) == ("install", "verify")
    assert stopped.can_roll_back and stopped.old_key == old.name
    assert stopped.connections == ("prod",)
    assert stopped.summary == "stopped after install (next: verify)"

    done = await rotate.roll_back(session, "prod")

    assert "new line removed" in done and "new key deleted" in done
    assert rotate.stopped_rotation(session, "prod") is None
    assert server.authorized_keys_path.read_bytes() == before
    assert [k.id for k in world.catalog.keys()] == [old.id]
    identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")
    assert openssh_login_works(server, identity)


async def test_stopped_after_the_switch_only_resumes(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    old_identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")
    session = Session(world.home)
    with pytest.raises(UsageError, match="no unfinished rotation"):
        [row async for row in rotate.resume(session, "prod")]

    stop_rotation_after("switched")

    stopped = rotate.stopped_rotation(session, "prod")
    assert stopped is not None and not stopped.can_roll_back
    assert stopped.next_step == "remove-old"
    with pytest.raises(UsageError, match="past the switch"):
        await rotate.roll_back(session, "prod")

    rows = [row async for row in rotate.resume(session, "prod")]

    assert [(r.step, r.status) for r in rows] == [
        (step, StepStatus.OK) for step in ("check", "generate", "remove-old", "cleanup")
    ]
    assert rotate.stopped_rotation(session, "prod") is None
    assert not openssh_login_works(server, old_identity)
