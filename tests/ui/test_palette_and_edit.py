"""Command palette (connections and actions) and the edit form, on the real catalog."""

from __future__ import annotations

from types import SimpleNamespace

from textual.command import CommandPalette
from textual.widgets import Input

from tests.fixtures.pilot import main_screen, make_app, wait_for_screen, wait_until
from tunnel_tui.core.config import load
from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen
from tunnel_tui.ui.screens.validation import ValidationScreen

CLOSED_PORT = SimpleNamespace(host="127.0.0.1", port=9, user="tunnel")  # nothing listens


async def test_palette_finds_a_connection_action(secret_service, add_tunnel_connection) -> None:
    add_tunnel_connection("orders-pg", bastion=CLOSED_PORT, authorize=False)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await main_screen(pilot)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        await pilot.press(*"validate orders")
        await wait_until(pilot, lambda: "Validate orders-pg" in str(
            app.screen.query_one("CommandList").get_option_at_index(0).prompt), what="hit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ValidationScreen), what="log")
        log = app.screen
        assert isinstance(log, ValidationScreen) and log.connection_name == "orders-pg"
        await wait_until(pilot, log.finished.is_set, what="validation")
        failed = log.step_log.failed
        assert failed is not None and failed.step == "tcp" and failed.hint


async def test_edit_changes_the_database_host_and_keeps_the_key(secret_service,
                                                               add_tunnel_connection) -> None:
    before = add_tunnel_connection("billing", bastion=CLOSED_PORT, authorize=False).result
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await main_screen(pilot)
        await pilot.press("e")
        form = await wait_for_screen(pilot, TunnelFormScreen, "form")
        host = form.query_one("#host", Input)
        assert host.value == before.connection.database.host  # prefilled
        assert form.query_one("#ssh-port", Input).value == "9"
        await wait_until(pilot, lambda: form.query_one("#key-reuse").value == before.key.id,
                         what="current key chosen")
        host.value = "10.9.8.7"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, TunnelFormScreen),
                         what="saved")
    after = load().connections["billing"]
    assert after.database.host == "10.9.8.7"
    assert after.key_id == before.key.id
