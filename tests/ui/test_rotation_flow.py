"""Rotation in the app asks first, stops early on a bastion it cannot reach, and a
rotation that stopped half-way is resumed or rolled back from the app (real sshd,
Secret Service and rotation steps)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from textual.widgets import Button, Static

from tests.fixtures.pilot import (
    footer_keys,
    main_screen,
    make_app,
    settle,
    trust_bastion,
    wait_for_screen,
    wait_until,
)
from tests.rotation.helpers import stop_rotation_after
from tunnel_tui.core.config import load
from tunnel_tui.ui.screens.rotation import RotationScreen
from tunnel_tui.ui.screens.rotation_confirm import RotationConfirmScreen

pytestmark = pytest.mark.timeout(150)
NOWHERE = SimpleNamespace(host="bastion.does-not-exist.invalid", port=22, user="tunnel")


async def confirm(pilot: Any, choice: str) -> RotationScreen:
    dialog = await wait_for_screen(pilot, RotationConfirmScreen, "confirmation")
    await wait_until(pilot, lambda: bool(dialog.query(f"#{choice}")), what=choice)
    await pilot.click(f"#{choice}")
    screen = await wait_for_screen(pilot, RotationScreen, "rotation")
    await wait_until(pilot, screen.finished.is_set, timeout=90, what="rotation done")
    await settle(pilot)
    return screen


def verdict(screen: RotationScreen) -> str:
    return str(screen.query_one("#verdict", Static).render())


async def test_rotation_asks_first_and_cancel_is_the_default(
    secret_service: Any, sshd: Any, add_tunnel_connection: Any
) -> None:
    setup = add_tunnel_connection("asked", bastion=sshd)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen(pilot)
        await pilot.press("r")
        dialog = await wait_for_screen(pilot, RotationConfirmScreen, "confirmation")
        await wait_until(pilot, lambda: bool(dialog.query("#rotate")), what="plan")
        plan = str(dialog.query_one("#rotate-plan", Static).render())
        assert "new ed25519 key" in plan and sshd.host in plan
        assert "installed" in plan and "old key's line is removed" in plan
        assert app.focused is dialog.query_one("#cancel", Button)
        assert footer_keys(dialog) == ["Cancel"]
        await pilot.press("enter")  # the default: Cancel
        await wait_until(pilot, lambda: not isinstance(app.screen, RotationConfirmScreen),
                         what="closed")
        assert not isinstance(app.screen, RotationScreen)
    assert load().connections["asked"].key_id == setup.result.key.id  # nothing changed


async def test_a_bastion_that_does_not_resolve_stops_at_the_check(
    secret_service: Any, add_tunnel_connection: Any
) -> None:
    setup = add_tunnel_connection("lost", bastion=NOWHERE, authorize=False)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        await pilot.press("r")
        screen = await confirm(pilot, "rotate")
        results = screen.query_one("StepLog").results  # type: ignore[attr-defined]
        assert [(r.step, r.status.value) for r in results] == [("check", "fail")], results
        assert "nothing was changed" in results[0].detail
        assert "nothing was changed" in verdict(screen)
        assert footer_keys(screen)[:1] == ["Resume"] and "Roll back" not in footer_keys(screen)
    cfg = load()
    assert cfg.connections["lost"].key_id == setup.result.key.id
    assert list(cfg.keys) == [setup.result.key.id]  # no new key was even generated


async def test_a_stopped_rotation_is_rolled_back_or_resumed_in_the_app(
    secret_service: Any, sshd: Any, add_tunnel_connection: Any
) -> None:
    setup = add_tunnel_connection("half", bastion=sshd)
    trust_bastion(sshd)
    old_key = setup.result.key
    before = sshd.authorized_keys_path.read_bytes()
    stop_rotation_after("installed", "half")
    assert sshd.authorized_keys_path.read_bytes() != before  # the new line is there

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        await pilot.press("r")
        dialog = await wait_for_screen(pilot, RotationConfirmScreen, "confirmation")
        await wait_until(pilot, lambda: bool(dialog.query("#roll-back")), what="choices")
        assert "stopped" in str(dialog.query_one("#rotate-question").render())
        assert "stopped after install" in str(dialog.query_one("#rotate-plan").render())
        assert dialog.query("#resume") and not dialog.query("#rotate")
        screen = await confirm(pilot, "roll-back")
        assert screen.succeeded and "Rolled back" in verdict(screen)
        await pilot.press("escape")
    assert sshd.authorized_keys_path.read_bytes() == before
    assert load().connections["half"].key_id == old_key.id

    stop_rotation_after("installed", "half")
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        await pilot.press("r")
        screen = await confirm(pilot, "resume")
        assert screen.succeeded, verdict(screen)
        assert "Resume" not in footer_keys(screen)  # finished: nothing to resume
    new_id = load().connections["half"].key_id
    assert new_id != old_key.id
    authorized = sshd.authorized_keys_path.read_text()
    assert old_key.public_key.split()[1] not in authorized
