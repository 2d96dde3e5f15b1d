"""The app and the vault (no OS keyring here). After `tunnel-tui vault unlock` the top
bar says the agent holds it and nothing asks again: new secrets go into the agent's
vault (write-only) and work that needs a key runs in the agent (DESIGN.md, "Where a
secret comes from" (3)). With an agent that does not hold the vault, work that needs
it opens the unlock dialog once (never a CLI command) and then runs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from textual.screen import Screen
from textual.widgets import DataTable, Label

from tests.fixtures.pilot import (
    fill_connection,
    main_screen,
    make_app,
    open_form,
    open_keys,
    settle,
    wait_for_screen,
    wait_until,
)
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core import paths
from tunnel_tui.core import vault as vault_file
from tunnel_tui.core.config import load
from tunnel_tui.core.model import secret_name_for_key
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState
from tunnel_tui.core.steps import VALIDATION_STEPS, StepStatus
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.confirm import ConfirmScreen, PromptScreen
from tunnel_tui.ui.screens.host_key import HostKeyConfirmScreen
from tunnel_tui.ui.screens.public_key import PublicKeyScreen
from tunnel_tui.ui.screens.rotation import RotationScreen
from tunnel_tui.ui.screens.rotation_confirm import RotationConfirmScreen
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.screens.vault import VaultScreen
from tunnel_tui.ui.widgets.connection_table import ConnectionTable

pytestmark = pytest.mark.timeout(170)
PASSPHRASE = "correct horse battery"


def cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunnel_tui", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=90, check=False)


def record_pushes(app: TunnelTuiApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of screen the app pushes from now on (every dialog goes through it)."""
    pushed: list[str] = []
    push = app.push_screen

    def recording(screen: Screen[Any] | str, *args: Any, **kwargs: Any) -> Any:
        pushed.append(screen if isinstance(screen, str) else type(screen).__name__)
        return push(screen, *args, **kwargs)

    monkeypatch.setattr(app, "push_screen", recording)
    return pushed


async def click(pilot: Any, selector: str) -> None:
    """Click a button of the screen on top once it is laid out (a loaded machine draws a
    new dialog a few frames after it is pushed)."""
    screen = pilot.app.screen
    await wait_until(pilot, lambda: bool(screen.query(selector))
                     and screen.query_one(selector).region.area > 0, what=selector)
    await pilot.pause()
    await pilot.click(selector)


def authorized_blobs(sshd: Any) -> set[str]:
    return {part for line in sshd.authorized_keys_path.read_text().splitlines()
            for part in line.split() if part.startswith("AAAA")}


async def validated(pilot: Any) -> ValidationScreen:
    log = await wait_for_screen(pilot, ValidationScreen, "log", timeout=60)
    await wait_until(pilot, log.finished.is_set, timeout=90, what="validation")
    results = log.step_log.results
    assert [(r.step, r.status) for r in results] == [
        (step, StepStatus.OK) for step in VALIDATION_STEPS
    ], [(r.step, r.status, r.detail, r.hint) for r in results]
    return log


async def test_the_vault_the_agent_holds_serves_every_action_without_asking(
    sshd: Any, postgres: Any, keyring_sessions: Any, agent_reaper: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `vault unlock` from a plain SSH login: the agent holds the vault, this app no keyring.
    unlocked = cli("vault", "unlock", "--passphrase-stdin", env=keyring_sessions.no_dbus_env(),
                   stdin=PASSPHRASE + "\n")
    assert unlocked.returncode == 0, unlocked.stderr
    agent = AgentClient()
    app = make_app()
    pushed = record_pushes(app, monkeypatch)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await main_screen(pilot)
        facts = screen.query_one("#app-facts")
        await wait_until(pilot, lambda: "vault unlocked in the agent" in str(facts.render()),
                         what="top bar")
        # Add with a generated key: the key and the password go into the agent's vault.
        form = await open_form(pilot)
        note = form.query_one("#password-note", Label)
        await wait_until(pilot, lambda: "encrypted vault" in str(note.render()), what="note")
        fill_connection(form, "held", postgres, sshd)
        await click(pilot, "#save-validate")
        panel = await wait_for_screen(pilot, PublicKeyScreen, "key panel")
        await wait_until(pilot, lambda: bool(panel.line), what="public key line")
        sshd.authorize(panel.key.public_key)
        # Validate runs in the agent; its host-key question is asked here.
        await click(pilot, "#validate")
        question = await wait_for_screen(pilot, HostKeyConfirmScreen, "host key question",
                                         timeout=60)
        assert question.fingerprint == sshd.host_fingerprint
        await click(pilot, "#accept")
        await validated(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back to the list")
        table = screen.query_one(ConnectionTable)
        await wait_until(pilot, lambda: table.selected_name == "held", what="cursor on it")
        # Up: the agent reads the key from its vault.
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: getattr(table.status_of("held"), "state", None)
                         is TunnelState.UP, timeout=60, what="up")
        # Rotate: generated here, stored through the agent, SSH steps run by the agent.
        old = load().keys[load().connections["held"].key_id]
        await pilot.press("r")
        confirm = await wait_for_screen(pilot, RotationConfirmScreen, "confirmation")
        await wait_until(pilot, lambda: bool(confirm.query("#rotate")), what="plan")
        await click(pilot, "#rotate")
        rotation = await wait_for_screen(pilot, RotationScreen, "rotation")
        await wait_until(pilot, rotation.finished.is_set, timeout=90, what="rotation done")
        steps = rotation.query_one("StepLog").results  # type: ignore[attr-defined]
        assert all(r.status is StepStatus.OK for r in steps), steps
        new = load().keys[load().connections["held"].key_id]
        assert new.id != old.id
        blobs = authorized_blobs(sshd)
        assert new.public_key.split()[1] in blobs and old.public_key.split()[1] not in blobs
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back to the list")
        # Delete, with the key's line taken off the bastion by the agent.
        table.focus()
        await pilot.press("delete")
        dialog = await wait_for_screen(pilot, ConfirmScreen, "delete confirmation")
        await settle(pilot)
        assert str(dialog.query_one("#confirm-option").render()).startswith("[x]")
        await click(pilot, "#confirm")
        await wait_until(pilot, lambda: "held" not in load().connections, timeout=60,
                         what="deleted")
        await wait_until(pilot, lambda: any("line is off" in n.message
                                            for n in app._notifications), what="cleaned")
        assert new.public_key.split()[1] not in authorized_blobs(sshd)
        # A key generated and deleted on the keys screen: into and out of the agent's vault.
        keys = await open_keys(pilot)
        await pilot.press("g")
        await wait_for_screen(pilot, PromptScreen, "key name")
        await pilot.press(*"spare", "enter")
        await wait_until(pilot, lambda: any(k.name == "spare" for k in load().keys.values()),
                         what="key generated")
        spare = next(k for k in load().keys.values() if k.name == "spare")
        assert agent.secret_exists(secret_name_for_key(spare.id))
        await wait_until(pilot, lambda: keys.query_one(DataTable).row_count == 1,
                         what="key listed")
        await pilot.press("delete")
        await wait_for_screen(pilot, ConfirmScreen, "delete the key")
        await click(pilot, "#confirm")
        await wait_until(pilot, lambda: not load().keys, what="key deleted")
        assert not agent.secret_exists(secret_name_for_key(spare.id))
        await settle(pilot)
    assert "VaultScreen" not in pushed, pushed  # nothing ever asked for the passphrase
    assert "RotationScreen" in pushed and "ConfirmScreen" in pushed


async def test_an_agent_without_the_vault_the_app_asks_once_then_works(
    sshd: Any, postgres: Any, agent_process: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault_file.create(paths.vault_path(), Secret(PASSPHRASE))  # exists, held by no one
    assert not agent_process.client().vault_status().get("unlocked")
    app = make_app()
    pushed = record_pushes(app, monkeypatch)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await main_screen(pilot)
        facts = screen.query_one("#app-facts")
        await wait_until(pilot, lambda: "vault locked" in str(facts.render()), what="top bar")
        form = await open_form(pilot)
        fill_connection(form, "asked", postgres, sshd)
        await click(pilot, "#save-validate")
        # Saving needs the vault: the dialog, once (the vault exists: asked once).
        dialog = await wait_for_screen(pilot, VaultScreen, "unlock dialog")
        await settle(pilot)
        words = " ".join(str(w.render()) for w in dialog.query(".dialog-text"))
        assert "Saving needs the vault" in words and "tunnel-tui vault" not in words
        assert not dialog.query_one("#again").display
        await pilot.press(*[("space" if c == " " else c) for c in PASSPHRASE], "enter")
        panel = await wait_for_screen(pilot, PublicKeyScreen, "key panel")
        await wait_until(pilot, lambda: bool(panel.line), what="public key line")
        sshd.authorize(panel.key.public_key)
        await click(pilot, "#validate")
        await wait_for_screen(pilot, HostKeyConfirmScreen, "host key question", timeout=60)
        await click(pilot, "#accept")
        await validated(pilot)
        await settle(pilot)
    assert pushed.count("VaultScreen") == 1, pushed
    assert "asked" in load().connections
