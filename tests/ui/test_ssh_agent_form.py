"""The form's "ssh-agent" key source against a real OpenSSH ssh-agent, sshd and
PostgreSQL: the agent's keys are listed with their comments, the chosen one is saved
as public data only, and validation passes with the key that never left the agent."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, RadioButton, Select

from tests.fixtures.pilot import (
    SIZE,
    fill_connection,
    main_screen,
    make_app,
    open_form,
    trust_bastion,
    wait_for_screen,
    wait_until,
)
from tests.fixtures.ssh_agent import keygen
from tunnel_tui.core.config import load
from tunnel_tui.core.keys import fingerprint
from tunnel_tui.core.model import KeySource
from tunnel_tui.core.steps import StepStatus
from tunnel_tui.ui.screens.validation import ValidationScreen


async def test_add_with_a_key_from_the_ssh_agent_then_validate_ok(
    sshd, postgres, secret_service, ssh_agent, isolated_env, monkeypatch, tmp_path,
) -> None:
    keydir = Path(isolated_env.root) / "agent-keys"
    keydir.mkdir(mode=0o700)
    public = keygen(keydir / "id_work", "work laptop")
    keygen(keydir / "id_other", "old key")
    ssh_agent.add(keydir / "id_other")
    ssh_agent.add(keydir / "id_work")
    (keydir / "id_work").unlink()  # only the agent has it now
    sshd.authorize(public)
    trust_bastion(sshd)
    monkeypatch.setenv("SSH_AUTH_SOCK", ssh_agent.socket)

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await main_screen(pilot)
        form = await open_form(pilot)
        fill_connection(form, "agent-pg", postgres, sshd)
        button = next(b for b in form.query(RadioButton) if b.name == "ssh-agent")
        button.value = True
        select = form.query_one("#key-agent", Select)
        await wait_until(pilot, lambda: select.display and len(select._options) == 3,
                         what="the agent's keys")
        labels = [str(label) for label, _ in select._options[1:]]
        assert any("work laptop" in label and fingerprint(public) in label for label in labels)
        assert any("old key" in label for label in labels)
        select.value = public
        save = form.query_one("#save-validate", Button)
        save.focus()  # tab order, as a person reaches it below the fields
        await pilot.press("enter")
        log = await wait_for_screen(pilot, ValidationScreen, "log")
        await wait_until(pilot, log.finished.is_set, timeout=60, what="validation")
        results = log.step_log.results
        assert log.succeeded, [(r.step, r.status, r.detail, r.hint) for r in results]
        assert all(r.status is StepStatus.OK for r in results)
        keyring = next(r for r in results if r.step == "keyring")
        assert "ssh-agent" in keyring.detail
    cfg = load()
    key = cfg.keys[cfg.connections["agent-pg"].key_id]
    assert key.source is KeySource.SSH_AGENT and key.public_key == public
