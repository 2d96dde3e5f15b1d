"""Issue 19, seen as a person sees it: the form's fields and pastes, each screen's own
footer, the palette, a failed row's reason and its whole error. Real catalog and
agent (isolated home); no servers needed except where a tunnel is brought up."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from textual.command import CommandPalette
from textual.widgets import Input, Label, Select
from textual.widgets._footer import FooterKey

from tests.fixtures.pilot import (
    footer_keys,
    main_screen,
    make_app,
    settle,
    wait_for_screen,
    wait_until,
)
from tests.fixtures.pilot import open_form as open_new_form
from tunnel_tui.core.model import DbKind
from tunnel_tui.ui.screens.confirm import ConfirmScreen
from tunnel_tui.ui.screens.public_key import PublicKeyScreen
from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen
from tunnel_tui.ui.widgets.connection_table import ConnectionTable
from tunnel_tui.ui.widgets.detail_pane import DetailPane

CLOSED_PORT = SimpleNamespace(host="127.0.0.1", port=9, user="tunnel")  # nothing listens


async def open_form(pilot: Any) -> TunnelFormScreen:
    form = await open_new_form(pilot)
    await settle(pilot)
    return form


def note(form: TunnelFormScreen, field: str) -> str:
    label = form.query_one(f"#{field}-error", Label)
    return str(label.render()) if label.display else ""


async def test_pasting_a_url_or_host_port_fills_the_fields(isolated_env: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        form.query_one("#host", Input).value = (
            "mysql://app:hunter2@db-billing.internal:3307/billing?ssl-mode=REQUIRED")
        await settle(pilot)
        values = {f: form.query_one(f"#{f}", Input).value
                  for f in ("host", "port", "user", "database", "password")}
        assert values == {"host": "db-billing.internal", "port": "3307", "user": "app",
                          "database": "billing", "password": ""}
        assert form.query_one("#kind", Select).value is DbKind.MYSQL
        assert form.query_one("#tls", Select).value == "REQUIRED"
        assert "not kept" in note(form, "password")  # the password went nowhere
        form.query_one("#ssh-host", Input).value = "ssh://tunnel@bastion.example.com:2222"
        await settle(pilot)
        assert [form.query_one(f"#{f}", Input).value for f in ("ssh-host", "ssh-port",
                                                               "ssh-user")] == [
            "bastion.example.com", "2222", "tunnel"]
        # host:port splits too; an SSH address in the database's Host says where it goes.
        form.query_one("#host", Input).value = "10.0.12.34:5432"
        await settle(pilot)
        assert form.query_one("#host", Input).value == "10.0.12.34"
        assert form.query_one("#port", Input).value == "5432"
        form.query_one("#host", Input).value = "ssh://tunnel@bastion.example.com"
        await settle(pilot)
        assert "paste it into the bastion's Host" in note(form, "host")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # refused: the SSH address is still in the wrong field
        assert "bastion's Host" in note(form, "host")
        form.query_one("#host", Input).value = "db:5432:extra"
        await settle(pilot)
        assert "IPv6" not in note(form, "host") and "port in Port" in note(form, "host")


async def test_form_tab_order_footer_and_headings(isolated_env: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        assert footer_keys(form) == ["Save", "Cancel"]
        assert not form.query("Switch")  # the bastion is a heading, not a control
        chain = [w.id for w in form.focus_chain]
        assert chain[0] == "name" and chain[-1] == "save-validate"
        assert all(w.id for w in form.focus_chain)  # no unnamed (invisible) stop
        form.query_one("#save-validate").focus()
        await pilot.press("tab")
        assert app.focused is form.query_one("#name")  # straight back to Name
        name = form.query_one("#name", Input)
        assert name.placeholder.startswith("e.g. ")  # an example, not a value
        radios = [str(b.render()) for b in form.query("StateRadioButton")]
        assert radios[0].startswith("(●)") and all(r.startswith("( )") for r in radios[1:])


async def test_public_key_dialog_footer_and_one_line(secret_service: Any,
                                                     add_tunnel_connection: Any,
                                                     monkeypatch: Any) -> None:
    monkeypatch.setenv("TUNNEL_TUI_CLIPBOARD", "no")  # a terminal that drops OSC 52
    setup = add_tunnel_connection("keyed", bastion=CLOSED_PORT, authorize=False)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen(pilot)
        app.push_screen(PublicKeyScreen(app.services, setup.result.key))
        panel = await wait_for_screen(pilot, PublicKeyScreen, "panel")
        await wait_until(pilot, lambda: bool(panel.line), what="line")
        await settle(pilot)
        assert footer_keys(panel) == ["Copy", "Restricted", "Bastion setup", "Close"]
        line = panel.query_one("#pubkey-line")
        assert line.size.height == 1  # unbroken: the dialog scrolls sideways instead
        assert panel.line.endswith(f" tunnel-tui:{setup.result.key.name}")
        label = panel.query_one("#restricted-label", Label)
        assert "off" in str(label.render())
        # The note wraps inside the dialog at 80 columns (its end was cut off).
        assert label.region.right <= panel.query_one("#pubkey-dialog").content_region.right
        assert label.region.height >= 2
        await pilot.press("t")
        await wait_until(pilot, lambda: "restrict" in panel.line, what="restricted line")
        assert "on" in str(label.render()).split(":")[1]
        # Where the terminal's clipboard is not known to work, "copied" is not claimed.
        await pilot.press("c")
        await settle(pilot)
        said = [n.title + " " + n.message for n in app._notifications]
        assert any("Select the line to copy" in s for s in said), said
        assert not any("copied" in s.lower() for s in said), said
        monkeypatch.setenv("TUNNEL_TUI_CLIPBOARD", "osc52")  # one known to take it
        await pilot.press("c")
        await settle(pilot)
        assert "Public key copied." in [n.message for n in app._notifications]


async def test_palette_offers_each_list_action_once(secret_service: Any,
                                                    add_tunnel_connection: Any) -> None:
    for name in ("alpha", "beta", "gamma"):
        add_tunnel_connection(name, bastion=CLOSED_PORT, authorize=False)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main = await main_screen(pilot)
        assert footer_keys(main)[-1] == "Palette"
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        palette = app.screen
        await settle(pilot)
        options = palette.query_one("CommandList")

        def titles() -> list[str]:
            return [str(options.get_option_at_index(i).prompt).split("\n")[0]  # type: ignore[attr-defined]
                    for i in range(options.option_count)]  # type: ignore[attr-defined]

        await wait_until(pilot, lambda: any("Validate" in t for t in titles()), what="hits")
        shown = titles()
        for action in ("Up/Down", "Edit", "Copy", "Delete", "Validate", "Rotate key of",
                       "SSH keys"):
            hits = [t for t in shown if t.startswith(action + " ") or t == action]
            assert len(hits) == 1, (action, shown)
        assert "Go to beta" in shown and "Go to gamma" in shown


async def test_a_failed_row_names_its_kind_and_the_pane_shows_everything(
    secret_service: Any, add_tunnel_connection: Any, agent_process: Any
) -> None:
    add_tunnel_connection("refused-pg", bastion=CLOSED_PORT, authorize=False)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await main_screen(pilot)
        table = screen.query_one(ConnectionTable)
        table.focus()
        await pilot.press("enter")

        def failed() -> bool:
            status = table.status_of("refused-pg")
            return status is not None and status.state.value == "failed"

        await wait_until(pilot, failed, timeout=60, what="failed")
        await settle(pilot)
        assert str(table.get_cell("refused-pg", "state")) == "✕ failed: refused"
        status = table.status_of("refused-pg")
        assert status is not None and status.last_error and status.hint
        pane = screen.query_one(DetailPane)
        await wait_until(pilot, lambda: "refused" in str(pane.render()), what="pane")
        text = " ".join(str(pane.render()).split())
        assert " ".join(status.last_error.split()) in text  # the whole error, wrapped
        assert " ".join(status.hint.split()) in text
        # The toast is short and sits away from the footer and the pane.
        for toast in app.screen.query("Toast"):
            assert toast.region.bottom <= pane.region.y


async def test_delete_confirmation_has_its_own_footer(secret_service: Any,
                                                      add_tunnel_connection: Any) -> None:
    add_tunnel_connection("doomed", bastion=CLOSED_PORT, authorize=False)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        main = await main_screen(pilot)
        main.query_one(ConnectionTable).focus()
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await settle(pilot)
        assert footer_keys(app.screen) == ["Cancel", "Delete"]  # both answers' keys
        assert app.focused is app.screen.query_one("#cancel")  # the default
        option = app.screen.query("#confirm-option")
        assert option  # the bastion's line can go too: the box says its state in words
        box = option.first()
        assert str(box.render()).startswith("[x]")
        # All of it inside the dialog at 80 columns: the box's label short, the file and
        # the bastion in the text, which wraps (the label was cut at '…on 127.0').
        dialog = app.screen.query_one(".dialog")
        assert box.region.right <= dialog.content_region.right
        assert "…" not in str(box.render())
        text = " ".join(str(t.render()) for t in app.screen.query(".dialog-text"))
        assert "authorized_keys on 127.0.0.1" in text.replace("\n", " ")
        assert not any(k.display for k in main.query(FooterKey) if k.parent and
                       k.parent.display)  # the list's footer steps aside
        await pilot.press("escape")
        await settle(pilot)
        assert "Quit" in footer_keys(main)


async def test_discard_and_delete_dialogs_name_their_confirming_key() -> None:
    """In-memory services: the footer offers `d` beside esc, Cancel keeps the focus,
    and `d` answers as the red button does."""
    from tests.fixtures.ui import FakeServices, frozen_clock
    from tunnel_tui.ui.app import TunnelTuiApp

    app = TunnelTuiApp(FakeServices(), clock=frozen_clock, open_sandbox=lambda: None)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await main_screen(pilot)
        await pilot.press("a")
        form = await wait_for_screen(pilot, TunnelFormScreen, "form")
        await pilot.press(*"typed", "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked")
        await settle(pilot)
        keys = [f"{k.key_display} {k.description}" for k in app.screen.query(FooterKey)
                if k.display and not k.has_class("-disabled")]
        assert keys == ["esc Cancel", "d Discard"]
        assert app.focused is app.screen.query_one("#cancel")
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen is main, what="discarded")
        assert not form.is_attached

        main.query_one(ConnectionTable).focus()
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await settle(pilot)
        assert footer_keys(app.screen) == ["Cancel", "Delete"]
        await pilot.press("escape")  # and esc still answers no
        await wait_until(pilot, lambda: app.screen is main, what="kept")


async def test_readme_key_table_matches_the_footers() -> None:
    """A layout check (in-memory services): each screen's footer is the README's row."""
    import re
    from pathlib import Path

    from tests.fixtures.ui import ROTATION_STOPPED, FakeServices, frozen_clock
    from tunnel_tui.ui.app import TunnelTuiApp

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = readme.split("| screen | footer |", 1)[1].split("\n\n", 1)[0]
    table: dict[str, list[str]] = {}
    for line in rows.splitlines():
        match = re.fullmatch(r"\| ([a-z ]+) \| (`.*) \|", line)
        if match:
            table[match.group(1)] = [f"{key} {words.strip()}" for key, words in
                                     re.findall(r"`([^`]+)` ([^·]+)", match.group(2))]
    app_wide = {"q Quit", "? Help", "^p Palette"}  # one line under the table
    app = TunnelTuiApp(FakeServices(rotation=ROTATION_STOPPED), clock=frozen_clock,
                       open_sandbox=lambda: None)
    seen: dict[str, list[str]] = {}
    shows_app_wide: dict[str, bool] = {}
    async with app.run_test(size=(160, 40)) as pilot:

        async def footer(name: str, screen: str) -> None:
            await wait_until(pilot, lambda: type(app.screen).__name__ == screen, what=screen)
            await settle(pilot)
            keys = [f"{k.key_display} {k.description}" for k in app.screen.query(FooterKey)
                    if k.display and not k.has_class("-disabled")]
            seen[name] = [k for k in keys if k not in app_wide]
            shows_app_wide[name] = app_wide <= set(keys)

        await main_screen(pilot)
        await footer("connection list", "ConnectionsScreen")
        await pilot.press("a")
        await footer("tunnel form", "TunnelFormScreen")
        await pilot.press("escape")
        await pilot.press("k")
        await footer("keys", "KeysScreen")
        await pilot.press("p")
        await footer("public key", "PublicKeyScreen")
        await pilot.press("b")
        await footer("bastion setup", "BastionSetupScreen")
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.press("v")  # the in-memory run stops at ssh-auth: Wait is offered
        await footer("validation log", "ValidationScreen")
        await pilot.press("escape")
        await pilot.press("r")  # asks first; the in-memory rotation stopped at install
        await footer("rotation confirmation", "RotationConfirmScreen")
        await wait_until(pilot, lambda: bool(app.screen.query("#resume")), what="resume")
        await pilot.click("#resume")
        await footer("key rotation", "RotationScreen")
    assert seen == {name: table[name] for name in seen}
    assert set(seen) == set(table)
    full = re.search(r"The full screens \(([^)]+)\) also show\s+`q` Quit · `\?` Help · "
                     r"`\^p` Palette; dialogs show only their own keys", readme)
    assert full, "the README's line on the app-wide keys"
    assert set(full.group(1).split(", ")) == {n for n, shown in shows_app_wide.items() if shown}


async def test_nothing_typed_is_lost_and_the_cursor_follows_the_save(
    secret_service: Any, add_tunnel_connection: Any
) -> None:
    from tunnel_tui.ui.app import TunnelTuiApp
    from tunnel_tui.ui.services import RealServices

    add_tunnel_connection("first", bastion=CLOSED_PORT, authorize=False)
    app = TunnelTuiApp(RealServices(), refresh_seconds=0.3, in_sandbox=True)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await main_screen(pilot)
        form = await open_form(pilot)
        assert "sandbox" in str(form.query_one("#form-dialog").border_title)
        await pilot.press("escape")  # nothing typed: closes at once
        await wait_until(pilot, lambda: app.screen is main, what="closed")
        form = await open_form(pilot)
        await pilot.press(*"second")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked")
        assert "Discard changes?" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("enter")  # Cancel is the default: back to the form, text kept
        await wait_until(pilot, lambda: app.screen is form, what="back to the form")
        assert form.query_one("#name", Input).value == "second"
        for field, value in {"host": "10.0.0.5", "user": "reader", "ssh-host": "127.0.0.1",
                             "ssh-port": "9", "ssh-user": "tunnel"}.items():
            form.query_one(f"#{field}", Input).value = value
        await pilot.click("#save")
        await wait_until(pilot, lambda: isinstance(app.screen, PublicKeyScreen), what="panel")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is main, what="list")
        table = main.query_one(ConnectionTable)
        await wait_until(pilot, lambda: table.selected_name == "second", what="cursor moved")
        # A changed form, discarded: gone without saving.
        form = await open_form(pilot)
        await pilot.press(*"third")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: app.screen is main, what="discarded")
    from tunnel_tui.core.config import load

    assert sorted(load().connections) == ["first", "second"]


def test_help_names_every_key_of_the_readme_table() -> None:
    """What each screen's footer offers (the README's table, checked against the footers
    above) is in the help too, under that screen."""
    import re
    from pathlib import Path

    from tunnel_tui.ui.screens.help import HELP

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = readme.split("| screen | footer |", 1)[1].split("\n\n", 1)[0]
    sections = {"connection list": "Connections", "tunnel form": "Tunnel form",
                "validation log": "Validation log", "rotation confirmation": "Key rotation",
                "key rotation": "Key rotation", "keys": "Keys", "public key": "Public key",
                "bastion setup": "Bastion setup"}
    spelled = {"⏎": "enter", "del": "delete", "^s": "ctrl+s", "^p": "ctrl+p"}
    help_sections = dict(re.findall(r"\*\*([^*]+)\*\*(.*?)(?=\n\n|\Z)", HELP, re.S))
    missing = []
    for line in rows.splitlines():
        match = re.fullmatch(r"\| ([a-z ]+) \| (`.*) \|", line)
        if not match:
            continue
        section = help_sections.get(sections[match.group(1)], "")
        for key in re.findall(r"`([^`]+)`", match.group(2)):
            if key in ("q", "?", "^p"):
                continue  # under Anywhere
            if f"`{spelled.get(key, key)}`" not in section:
                missing.append(f"{match.group(1)}: {key}")
    assert not missing
