"""The app and the vault (no OS keyring here): after `tunnel-tui vault unlock` the top
bar says the agent holds it and nothing asks at start; work that needs the vault in
this process opens the unlock dialog (never a CLI command) and then runs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from textual.widgets import Label

from tests.fixtures.pilot import (
    main_screen,
    make_app,
    settle,
    trust_bastion,
    wait_for_screen,
    wait_until,
)
from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.screens.vault import VaultScreen

PASSPHRASE = "correct horse battery"


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunnel_tui", *args], input=stdin,
                          capture_output=True, text=True, timeout=90, check=False)


async def test_vault_held_by_the_agent_and_unlock_in_the_app(
    sshd: Any, agent_reaper: Any
) -> None:
    unlocked = cli("vault", "unlock", "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    assert unlocked.returncode == 0, unlocked.stderr
    added = cli("add", "held", "--db", "postgresql://app@127.0.0.1:5432/app",
                "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}", "--generate-key")
    assert added.returncode == 0, added.stderr
    trust_bastion(sshd)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await main_screen(pilot)
        facts = screen.query_one("#app-facts")
        await wait_until(pilot, lambda: "vault unlocked in the agent" in str(facts.render()),
                         what="top bar")
        await settle(pilot)
        assert not isinstance(app.screen, VaultScreen)  # nothing asks again
        # The form says where a password would go.
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, TunnelFormScreen), what="form")
        note = app.screen.query_one("#password-note", Label)
        await wait_until(pilot, lambda: "encrypted vault" in str(note.render()), what="note")
        await pilot.press("escape")
        # Validation reads the key here: the app asks for the passphrase itself.
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, VaultScreen), timeout=60,
                         what="unlock dialog")
        dialog = app.screen
        assert isinstance(dialog, VaultScreen)
        await settle(pilot)
        words = " ".join(str(w.render()) for w in dialog.query(".dialog-text"))
        assert "Validating held needs the vault" in words
        assert "tunnel-tui vault" not in words
        assert not dialog.query_one("#again").display  # it exists: asked once
        await pilot.press(*PASSPHRASE.replace(" ", "_"), "enter")  # wrong
        error = dialog.query_one("#vault-error", Label)
        await wait_until(pilot, lambda: "✕" in str(error.render()), what="refused")
        await pilot.press(*[("space" if c == " " else c) for c in PASSPHRASE], "enter")
        log = await wait_for_screen(pilot, ValidationScreen, "log")
        await wait_until(pilot, lambda: log.finished.is_set() and any(
            r.step == "keyring" for r in log.step_log.results), timeout=60, what="run again")
        keyring = next(r for r in log.step_log.results if r.step == "keyring")
        assert keyring.status.value == "ok", keyring
