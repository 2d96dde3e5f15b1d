"""The sandbox sets itself up in a throwaway home (vault, bastion, keys, agent) and
leaves nothing behind. Database steps are not asserted: tests must not depend on the
machine's own databases (only the sandbox itself uses them)."""

from __future__ import annotations

import os

from textual.pilot import Pilot

from tunnel_tui.core.config import load
from tunnel_tui.core.steps import StepStatus
from tunnel_tui.demo import sandbox as sandbox_mod
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.services import RealServices

HOP_STEPS = ["config", "keyring", "resolve", "tcp", "host-key", "ssh-auth"]


async def test_sandbox_is_ready_to_use_and_removed_at_exit(isolated_env) -> None:
    own_home = os.environ["TUNNEL_TUI_HOME"]
    box = sandbox_mod.create()
    try:
        assert os.environ["TUNNEL_TUI_HOME"] == str(box.home) != own_home
        assert os.environ["TUNNEL_TUI_SECRETS"] == "vault"  # never the user's keyring
        cfg = load(box.home)
        assert sorted(cfg.connections) == ["sandbox-mariadb", "sandbox-pg"]
        assert box.bastion.host_fingerprint in box.greeting
        services = RealServices(box.home, vault_passphrase=box.passphrase)
        results = [r async for r in services.validate("sandbox-pg")]
        by_step = {r.step: r for r in results if r.status is not StepStatus.RUNNING}
        assert all(by_step[s].ok for s in HOP_STEPS), [(r.step, r.detail) for r in results]
        assert await services.agent_running()
        # A connection of one's own: the greeting names the file its key's line goes in.
        from tunnel_tui.core.catalog import Catalog, GenerateKey

        named = box.bastion.authorized_keys
        assert str(named) in box.greeting
        added = Catalog(box.home, vault_passphrase=box.passphrase).add(
            "mine", "postgresql://postgres@127.0.0.1:5432/postgres",
            f"ssh://{box.bastion.user}@{box.bastion.host}:{box.bastion.port}", key=GenerateKey())
        with named.open("a") as f:
            f.write(f"{added.key.public_key} tunnel-tui:mine\n")
        results = [r async for r in services.validate("mine")]
        by_step = {r.step: r for r in results if r.status is not StepStatus.RUNNING}
        assert all(by_step[s].ok for s in HOP_STEPS), [(r.step, r.detail) for r in results]
        agent_pid = box.agent.pid if box.agent else None
    finally:
        sandbox_mod.close(box)
    assert not box.root.exists()
    assert os.environ["TUNNEL_TUI_HOME"] == own_home
    assert "TUNNEL_TUI_SECRETS" not in os.environ
    assert agent_pid is not None
    assert not os.path.exists(f"/proc/{agent_pid}") or \
        open(f"/proc/{agent_pid}/stat").read().split()[2] == "Z"


async def test_empty_config_offers_the_sandbox(secret_service) -> None:
    def start_sandbox() -> None:
        raise AssertionError("the app hands the starter back; it never runs it")

    app = TunnelTuiApp(RealServices(), open_sandbox=start_sandbox)
    async with app.run_test(size=(80, 24)) as pilot:
        pilot_: Pilot[None] = pilot
        await pilot_.pause()
        await app.workers.wait_for_complete()
        await pilot_.pause()
        text = str(app.screen.query_one("#empty-state").render())
        assert "No connections yet. Press a to add one, or s to try the sandbox." in text
        await pilot_.press("s")
        await pilot_.pause()
    assert app.return_value is start_sandbox  # for cli.py to run once the app has exited
