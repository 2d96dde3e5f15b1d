"""Issue 17 in the app (in-memory services; the actions behind them are tested against
real servers in tests/cli/test_exec.py, test_bastion_setup.py, tests/agent/test_history.py):
`o` opens the client with the app suspended, the public key screen's `b` shows the
bastion setup with a copy key, and the traffic pane follows the selected tunnel."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from textual.widgets import Sparkline, Static

from tests.fixtures.pilot import main_screen, settle, wait_until
from tests.fixtures.ui import FakeServices, frozen_clock
from tunnel_tui.core.history import Reconnect, TunnelHistory
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.bastion_setup import BastionSetupScreen
from tunnel_tui.ui.widgets.traffic_pane import TrafficPane


def make(services: FakeServices) -> TunnelTuiApp:
    return TunnelTuiApp(services, clock=frozen_clock, open_sandbox=lambda: None)


async def test_o_runs_the_client_with_the_app_suspended(monkeypatch: Any) -> None:
    services = FakeServices()
    app = make(services)
    suspended: list[bool] = []

    @contextlib.contextmanager
    def suspend() -> Iterator[None]:  # a terminal that can hand over (headless cannot)
        suspended.append(True)
        yield
        suspended.append(False)

    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        monkeypatch.setattr(app, "suspend", suspend)
        await pilot.press("o")
        await settle(pilot)
        assert services.opened == ["analytics-pg"]
        assert suspended == [True, False]


async def test_o_where_the_terminal_cannot_hand_over_says_what_to_run() -> None:
    services = FakeServices()
    app = make(services)
    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        await pilot.press("o")  # the headless driver cannot suspend
        await settle(pilot)
        assert services.opened == []
        messages = [n.message for n in app._notifications]
        assert any("tunnel-tui exec analytics-pg" in m for m in messages), messages


async def test_bastion_setup_from_the_public_key_screen_copies_the_script() -> None:
    app = make(FakeServices())
    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        for key in ("k", "p", "b"):
            await pilot.press(key)
            await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BastionSetupScreen)
        await wait_until(pilot, lambda: bool(screen.script), what="the script")
        text = str(screen.query_one("#setup-script", Static).render())
        assert "restrict,port-forwarding,permitopen=" in text
        await pilot.press("c")
        assert app.clipboard == screen.script
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, BastionSetupScreen)


async def test_the_traffic_pane_follows_the_selected_live_tunnel() -> None:
    services = FakeServices()
    history = TunnelHistory(bytes_in=(0, 500, 2500), bytes_out=(0, 10, 40), channels=(1, 2, 2),
                            reconnects=(Reconnect("2026-11-20T08:14:00Z", "eof", 3.0),))
    services.histories["analytics-pg"] = history
    app = make(services)
    async with app.run_test(size=(120, 36)) as pilot:
        await main_screen(pilot)
        pane = app.screen.query_one(TrafficPane)
        await wait_until(pilot, lambda: pane.display, what="the traffic pane")
        assert pane.query_one("#traffic-in", Sparkline).data == [0, 500, 2500]
        assert str(pane.query_one("#traffic-in-now").render()) == "2.5 kB/s"
        assert str(pane.query_one("#traffic-channels-now").render()) == "2"
        assert "eof (down 3s)" in str(pane.query_one("#traffic-reconnects").render())
        for _ in range(3):  # down to staging-pg: down, so no history and no pane
            await pilot.press("down")
        await wait_until(pilot, lambda: not pane.display, what="the pane to hide")
