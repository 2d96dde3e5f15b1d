"""The app with ssh-agent keys and a certificate that expires within a day (made by
ssh-keygen with a test CA): the keys list marks that key with "!", the note names
where the key lives and the certificate's principals and validity, and the
connection's detail pane marks it too."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from textual.widgets import DataTable, Static

from tests.core.test_ssh_agent_catalog import NoKeyring
from tests.fixtures.pilot import main_screen, make_app, open_keys, wait_until
from tests.fixtures.ssh_agent import keygen
from tunnel_tui.core.catalog import AgentKeyChoice, Catalog
from tunnel_tui.ui.services import RealServices
from tunnel_tui.ui.widgets.detail_pane import describe

DB = "postgresql://app@db.internal:5432/app"


async def test_keys_screen_and_detail_mark_an_expiring_certificate(isolated_env, user_ca,
                                                                  secret_service):
    keydir = Path(isolated_env.root) / "k"
    keydir.mkdir(mode=0o700)
    laptop = keygen(keydir / "laptop", "me@laptop")
    work = keygen(keydir / "work", "me@work")
    cert = user_ca.sign(keydir / "work.pub", ["tunnel", "dba"], "-5m:+2h").read_text()
    catalog = Catalog(secrets=NoKeyring())
    catalog.add("plain", DB, "ssh://tunnel@b1.example", key=AgentKeyChoice(laptop, "laptop"))
    catalog.add("certified", DB, "ssh://tunnel@b2.example", key=AgentKeyChoice(work, "work"),
                certificate=cert)

    app = make_app()
    async with app.run_test(size=(110, 30)) as pilot:
        await main_screen(pilot)
        keys = await open_keys(pilot)
        table = keys.query_one(DataTable)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert names == ["laptop", "! work"]
        note = keys.query_one("#keys-note", Static)

        table.move_cursor(row=1)
        await wait_until(pilot, lambda: "tunnel, dba" in str(note.render()), what="cert note")
        text = str(note.render())
        assert "work lives in your ssh-agent" in text
        assert "! certificate for tunnel, dba, valid" in text and "(expires in " in text
        table.move_cursor(row=0)
        await wait_until(pilot, lambda: "certificate" not in str(note.render()), what="note")
        assert "laptop lives in your ssh-agent" in str(note.render())
        # Rotation of a key we do not own is refused at once, saying why.
        await pilot.press("r")
        await pilot.pause()
        assert app.screen is keys
        titles = [n.title for n in app._notifications]
        assert "laptop lives in your ssh-agent" in titles, titles

    services = RealServices()
    marked = describe(services.detail("certified"), None, datetime.now(UTC)).plain
    assert "! cert" in marked and "tunnel, dba" in marked and "in your ssh-agent" in marked
    plain = describe(services.detail("plain"), None, datetime.now(UTC)).plain
    assert "cert" not in plain
