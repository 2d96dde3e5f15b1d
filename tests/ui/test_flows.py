"""The app driven like a person would, against real servers: OpenSSH sshd, PostgreSQL,
a private Secret Service (or none: the vault), the agent process."""

from __future__ import annotations

from textual.widgets import Button, Input, Label, Static

from tests.fixtures.pilot import (
    SIZE,
    fill,
    fill_connection,
    footer_keys,
    main_screen,
    make_app,
    open_form,
    settle,
    trust_bastion,
    wait_for_screen,
    wait_until,
)
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.config import load
from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.core.status import TunnelState
from tunnel_tui.core.steps import StepStatus
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.host_key import HostKeyChangedScreen, HostKeyConfirmScreen
from tunnel_tui.ui.screens.public_key import PublicKeyScreen
from tunnel_tui.ui.screens.rotation import RotationScreen
from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.screens.vault import VaultScreen
from tunnel_tui.ui.services import RealServices
from tunnel_tui.ui.widgets.connection_table import ConnectionTable
from tunnel_tui.ui.widgets.step_log import StepRow


def paths_vault_exists() -> bool:
    from tunnel_tui.core import paths

    return paths.vault_path().exists()


async def test_add_with_generated_key_then_validate_ok(sshd, postgres, secret_service) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        fill_connection(form, "app-pg", postgres, sshd)
        await pilot.click("#save-validate")
        # Generated key: the public line to install, then "Validate now".
        panel = await wait_for_screen(pilot, PublicKeyScreen, "key panel")
        await wait_until(pilot, lambda: bool(panel.line), what="public key line")
        assert panel.line.startswith("ssh-ed25519 ") and "tunnel-tui:app-pg" in panel.line
        where = str(panel.query_one("#pubkey-where").render())
        assert f"~{sshd.user}/.ssh/authorized_keys on {sshd.host}" in where
        sshd.authorize(panel.key.public_key)
        await pilot.click("#validate")
        # First contact with the bastion: its fingerprint, and consent.
        question = await wait_for_screen(pilot, HostKeyConfirmScreen, "host key question")
        assert question.fingerprint == sshd.host_fingerprint
        await pilot.click("#accept")
        log = await wait_for_screen(pilot, ValidationScreen, "log")
        await wait_until(pilot, log.finished.is_set, timeout=60, what="validation")
        results = log.step_log.results
        assert log.succeeded, [(r.step, r.status, r.detail, r.hint) for r in results]
        assert [r.step for r in results][-1] == "query"
        assert all(r.status is StepStatus.OK for r in results)
        assert "works" in str(log.query_one("#verdict").render())
        await settle(pilot)
        assert "Wait for my key" not in footer_keys(log)  # nothing to wait for
    saved = load().connections["app-pg"]
    assert saved.bastion.user == sshd.user and saved.database.port == postgres.port
    assert KnownHosts().trusted_keys(sshd.host, sshd.port)  # accepted in the modal


async def test_form_shows_inline_errors_and_refuses_to_save(secret_service) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        await pilot.press(*"db1")
        form.query_one("#host", Input).focus()
        await pilot.press(*"bad", "space", *"host")
        form.query_one("#port", Input).focus()
        await pilot.press(*"70000")
        fill(form, ssh_host="bastion.example.com", ssh_user="tunnel")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # not saved

        def error(field: str) -> str:
            label = form.query_one(f"#{field}-error", Label)
            return str(label.render()) if label.display else ""

        assert "invalid host name" in error("host").lower()
        assert "70000" in error("port")
        assert "user is required" in error("user").lower()
        assert error("ssh-host") == "" and error("name") == ""
        assert form.query_one("#save", Button).disabled
        # Fixing a field clears its error at once; save becomes possible when all are fixed.
        fill(form, host="10.0.0.5", port="5432", user="reader")
        await settle(pilot)
        assert error("host") == error("port") == error("user") == ""
        assert not form.query_one("#save", Button).disabled
        await pilot.press("escape")
    assert load().connections == {}  # nothing was saved


async def test_validation_log_shows_failed_step_with_hint(sshd, secret_service,
                                                          add_tunnel_connection) -> None:
    add_tunnel_connection("no-key-yet", bastion=sshd, authorize=False)
    trust_bastion(sshd)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        await pilot.press("v")
        log = await wait_for_screen(pilot, ValidationScreen, "log")
        await wait_until(pilot, log.finished.is_set, timeout=60, what="validation")
        failed = log.step_log.failed
        assert failed is not None and failed.step == "ssh-auth"
        assert failed.hint and "authorized_keys" in failed.hint
        shown = "\n".join(row.text for row in log.step_log.query(StepRow))
        assert "✕ ssh-auth" in shown
        assert "→ " + failed.hint.split()[0] in shown  # the hint, under the failed step
        assert "stopped at ssh-auth" in str(log.query_one("#verdict").render())
        await settle(pilot)
        assert "Wait for my key" in footer_keys(log)
        skipped = [r.step for r in log.step_log.results if r.status is StepStatus.SKIP]
        assert skipped[:1] == ["channel"] and skipped[-1] == "query"


async def test_up_and_down_from_the_list_change_state_live(
    secret_service, sshd, postgres, add_tunnel_connection, agent_process
) -> None:
    add_tunnel_connection("live-pg", bastion=sshd, db=postgres)
    trust_bastion(sshd)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await main_screen(pilot)
        table = screen.query_one(ConnectionTable)

        def state() -> TunnelState | None:
            status = table.status_of("live-pg")
            return status.state if status else None

        def state_cell() -> str:
            return str(table.get_cell("live-pg", "state"))

        assert state() is TunnelState.DOWN and state_cell() == "○ down"
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: state() is TunnelState.UP, timeout=60, what="up")
        assert state_cell() == "● up"
        local = str(table.get_cell("live-pg", "local"))
        assert local.startswith("127.0.0.1:")
        assert "1 up / 1" in str(screen.query_one("#app-facts").render())
        await pilot.press("enter")
        await wait_until(pilot, lambda: state() is TunnelState.DOWN, timeout=30, what="down")
        assert state_cell() == "○ down"


async def test_vault_passphrase_when_no_keyring(sshd) -> None:
    # No D-Bus session here (isolated_env): no usable keyring, so secrets go to the vault.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await main_screen(pilot)
        facts = screen.query_one("#app-facts")
        await wait_until(pilot, lambda: "vault locked" in str(facts.render()),
                         what="header names the locked vault")
        assert not isinstance(app.screen, VaultScreen)  # nothing to unlock on a first start
        form = await open_form(pilot)
        fill(form, name="via-vault", host="10.0.0.5", user="reader", ssh_host=sshd.host,
             ssh_port=str(sshd.port), ssh_user=sshd.user)
        await pilot.click("#save")
        # The generated key must be stored: the vault passphrase is asked now, twice as
        # it creates the vault; two different ones are refused.
        vault = await wait_for_screen(pilot, VaultScreen, "vault modal")
        await wait_until(pilot, lambda: vault.query_one("#again").display, what="asked twice")
        assert "Create the vault" in str(vault.query_one("#vault-title").render())
        await pilot.press(*"correct", "space", *"horse", "enter", *"correct", "enter")
        error = vault.query_one("#vault-error", Label)
        await wait_until(pilot, lambda: "differ" in str(error.render()), what="mismatch")
        assert not paths_vault_exists()
        await pilot.press(*"correct", "space", *"horse", "enter")
        await pilot.press(*"correct", "space", *"horse", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PublicKeyScreen), what="panel")
        await wait_until(pilot, lambda: "vault unlocked ·" in str(facts.render()),
                         what="header shows the unlocked vault")
    from tunnel_tui.core import paths

    assert paths.vault_path().exists()
    assert "via-vault" in load().connections
    assert b"PRIVATE KEY" not in paths.vault_path().read_bytes()  # encrypted


async def test_vault_is_asked_at_start_when_connections_exist(sshd) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        fill(form, name="first", host="10.0.0.5", user="reader", ssh_host=sshd.host,
             ssh_user=sshd.user)
        await pilot.click("#save")
        await wait_until(pilot, lambda: isinstance(app.screen, VaultScreen), what="vault modal")
        await wait_until(pilot, lambda: app.screen.query_one("#again").display, what="twice")
        await pilot.press(*"pass", "enter", *"pass", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PublicKeyScreen), what="panel")
    app = make_app()  # a new session: the vault is locked again and holds a key
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, VaultScreen), what="vault modal")
        await pilot.press(*"wrong", "enter")
        vault = app.screen
        assert isinstance(vault, VaultScreen)
        error = vault.query_one("#vault-error", Label)
        await wait_until(pilot, lambda: "✕" in str(error.render()), what="wrong passphrase")
        await pilot.press(*"pass", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, VaultScreen), what="unlocked")


async def test_rotate_key_from_the_list(secret_service, sshd, add_tunnel_connection) -> None:
    setup = add_tunnel_connection("rotating", bastion=sshd)
    trust_bastion(sshd)
    old_key = setup.result.key
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        await pilot.press("r")  # asks first; Rotate confirms
        await wait_until(pilot, lambda: bool(app.screen.query("#rotate")), what="confirmation")
        await pilot.click("#rotate")
        rotation = await wait_for_screen(pilot, RotationScreen, "rotation")
        await wait_until(pilot, rotation.finished.is_set, timeout=90, what="rotation done")
        results = rotation.query_one("StepLog").results  # type: ignore[attr-defined]
        assert rotation.succeeded, [(r.step, r.status, r.detail, r.hint) for r in results]
        assert "Rotated" in str(rotation.query_one("#verdict").render())
        await settle(pilot)
        assert "Resume" not in footer_keys(rotation)  # a finished rotation has nothing to resume
    conn = load().connections["rotating"]
    assert conn.key_id != old_key.id
    new_key = load().keys[conn.key_id]
    authorized = sshd.authorized_keys_path.read_text()
    assert new_key.public_key.split()[1] in authorized
    assert old_key.public_key.split()[1] not in authorized


async def test_wait_for_my_key_is_handed_to_the_agent_until_it_is_installed(
    sshd, postgres, secret_service, add_tunnel_connection, agent_reaper, monkeypatch
) -> None:
    monkeypatch.setenv("TUNNEL_TUI_KEY_WAIT_CAP", "0.5")  # the agent it starts retries fast
    setup = add_tunnel_connection("waiting", bastion=sshd, db=postgres, authorize=False)
    trust_bastion(sshd)
    app = TunnelTuiApp(RealServices(), refresh_seconds=0.3, validate_retry_seconds=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        await pilot.press("v")
        log = await wait_for_screen(pilot, ValidationScreen, "log")
        await wait_until(pilot, log.finished.is_set, timeout=60, what="first run")
        assert log.step_log.failed is not None and log.step_log.failed.step == "ssh-auth"
        await pilot.press("w")
        countdown = log.query_one("#countdown", Static)
        await wait_until(pilot, lambda: "left" in str(countdown.render()), what="countdown")
        assert "waiting for the key in the agent" in str(countdown.render())
        (status,) = await RealServices().statuses()
        assert status.state.value == "waiting-for-key" and status.wait_until is not None
        sshd.authorize(setup.result.key.public_key)  # the admin installs the key
        await wait_until(pilot, lambda: log.succeeded is True, timeout=60, what="success")
        assert str(countdown.render()) == ""  # the countdown stops on success
    # The agent brought it up (and keeps it up: the app is closed now).
    (status,) = await RealServices().statuses()
    assert status.state.value == "up"


async def test_closing_the_app_keeps_the_wait_going(
    sshd, postgres, secret_service, add_tunnel_connection, agent_reaper, monkeypatch
) -> None:
    monkeypatch.setenv("TUNNEL_TUI_KEY_WAIT_CAP", "0.5")
    setup = add_tunnel_connection("waiting", bastion=sshd, db=postgres, authorize=False)
    trust_bastion(sshd)
    app = TunnelTuiApp(RealServices(), refresh_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        await pilot.press("v")
        log = await wait_for_screen(pilot, ValidationScreen, "log")
        await wait_until(pilot, log.finished.is_set, timeout=60, what="first run")
        await pilot.press("w")
        countdown = log.query_one("#countdown", Static)
        await wait_until(pilot, lambda: "left" in str(countdown.render()), what="countdown")
    # The app is gone; the key lands; the agent brings the tunnel up by itself.
    sshd.authorize(setup.result.key.public_key)

    async def is_up() -> bool:
        (status,) = await RealServices().statuses()
        return status.state.value == "up"

    await wait_until_async(is_up, 30, "the tunnel up after the app closed")


async def test_changed_host_key_is_a_hard_stop(sshd_factory, secret_service,
                                               add_tunnel_connection) -> None:
    server = sshd_factory()
    add_tunnel_connection("moved", bastion=server)
    trust_bastion(server)
    old = server.host_fingerprint
    server.restart(new_host_key=True)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyChangedScreen),
                         timeout=60, what="changed host key warning")
        warning = app.screen
        assert isinstance(warning, HostKeyChangedScreen)
        assert not warning.query("#accept")  # no way to accept from here
        text = " ".join(str(w.render()) for w in warning.query(".dialog-text, #hostkey-detail"))
        assert "CHANGED" in text and server.host_fingerprint in text
        assert f"tunnel-tui hosts forget {server.host}" in text
    assert KnownHosts().check(server.host, server.port, server.host_public_key).name == "CHANGED"
    assert old != server.host_fingerprint


async def test_pasted_pem_and_key_file_are_imported(sshd, client_keypair, secret_service) -> None:
    from textual.widgets import RadioSet, TextArea

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        for name, source in (("pasted", 1), ("from-file", 2)):
            form = await open_form(pilot)
            fill(form, name=name, host="10.0.0.5", user="reader", ssh_host=sshd.host,
                 ssh_port=str(sshd.port), ssh_user=sshd.user)
            buttons = list(form.query_one("#key-source", RadioSet).query("RadioButton"))
            buttons[source].value = True
            await settle(pilot)
            if source == 1:
                assert form.query_one("#key-pem").display
                form.query_one("#key-pem", TextArea).text = client_keypair.private_pem
            else:
                assert form.query_one("#key-path").display
                fill(form, key_path=str(client_keypair.path))
            await pilot.click("#save")
            # An imported key needs no installation panel: back to the list.
            await wait_until(pilot, lambda: not isinstance(app.screen, TunnelFormScreen),
                             what="saved")
            assert not isinstance(app.screen, PublicKeyScreen)
    cfg = load()
    keys = {cfg.keys[cfg.connections[n].key_id].public_key for n in ("pasted", "from-file")}
    assert keys == {" ".join(client_keypair.public_line.split()[:2])}


async def test_the_form_marks_a_connection_autostart(secret_service) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        fill(form, name="always-pg", host="10.0.0.5", database="app", user="app",
             ssh_host="bastion.example.com", ssh_user="tunnel")
        box = form.query_one("#autostart")
        box.scroll_visible(animate=False)
        await settle(pilot)
        await pilot.click("#autostart")
        await settle(pilot)
        assert "[x]" in str(box.render())
        await pilot.click("#save")
        await wait_until(pilot, lambda: not isinstance(app.screen, TunnelFormScreen),
                         what="form saved")
    assert load().connections["always-pg"].autostart is True
