"""The keys screen against the real catalog and Secret Service: generate, delete an
unused key, and a refusal that names the connections using a key."""

from __future__ import annotations

from types import SimpleNamespace

from textual.widgets import DataTable

from tests.fixtures.pilot import main_screen, make_app, open_keys, wait_for_screen, wait_until
from tunnel_tui.core.catalog import Catalog
from tunnel_tui.ui.screens.confirm import ConfirmScreen, PromptScreen
from tunnel_tui.ui.screens.public_key import PublicKeyScreen


async def test_generate_show_and_delete_keys(secret_service, add_tunnel_connection) -> None:
    bastion = SimpleNamespace(host="bastion.example.com", port=22, user="tunnel")
    used = add_tunnel_connection("uses-key", bastion=bastion, authorize=False).result.key
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await main_screen(pilot)
        keys = await open_keys(pilot)
        table = keys.query_one(DataTable)
        assert table.row_count == 1
        assert "uses-key" in str(table.get_row_at(0)[4])
        # Generate a key: asked for a name, then listed as unused.
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), what="name")
        await pilot.press(*"spare", "enter")
        await wait_until(pilot, lambda: table.row_count == 2, what="new key listed")
        row = next(i for i in range(2) if str(table.get_row_at(i)[0]) == "spare")
        assert str(table.get_row_at(row)[4]) == "unused"
        # Its public key, ready for authorized_keys.
        table.move_cursor(row=row)
        await pilot.press("p")
        panel = await wait_for_screen(pilot, PublicKeyScreen, "pubkey")
        await wait_until(pilot, lambda: bool(panel.line), what="line")
        assert panel.line.startswith("ssh-ed25519 ") and panel.line.endswith("tunnel-tui:spare")
        await pilot.press("escape")
        # Delete the unused one (after confirming).
        await wait_until(pilot, lambda: app.screen is keys, what="back to keys")
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: table.row_count == 1, what="key deleted")
        # The used key is refused, naming who uses it; nothing is asked or deleted.
        table.move_cursor(row=0)
        await pilot.press("delete")
        await pilot.pause()
        assert app.screen is keys
        messages = [n.message for n in app._notifications]
        assert any("uses-key" in m for m in messages), messages
    assert [k.id for k in Catalog().keys()] == [used.id]
