"""While the agent waits for a key (issue 19.6): the validation log says so instead of
an empty box and offers no second "Wait for my key"; the row's detail pane says what
it waits for instead of "press enter". In-memory services (layout checks)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.fixtures.pilot import footer_keys, main_screen, settle, wait_until
from tests.fixtures.ui import NOW, FakeServices, frozen_clock, sample_statuses
from tunnel_tui.core.formatting import local_clock
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.widgets.detail_pane import describe


def waiting_status(**changes: object) -> TunnelStatus:
    return replace(sample_statuses()["new-warehouse"], state=TunnelState.WAITING_FOR_KEY,
                   since=NOW, wait_until=NOW + timedelta(minutes=42, seconds=30),
                   **changes)  # type: ignore[arg-type]


class WaitingServices(FakeServices):
    """The agent takes the wait and keeps waiting (no event ends it)."""

    async def wait_for_key(self, name: str, seconds: float) -> TunnelStatus:
        return waiting_status()


async def test_the_log_says_the_agent_waits_and_w_is_not_offered_again() -> None:
    services = WaitingServices()
    app = TunnelTuiApp(services, clock=frozen_clock, open_sandbox=lambda: None)
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen(pilot)
        screen = ValidationScreen(services, "new-warehouse", wait_for_key=True)
        app.push_screen(screen)
        await wait_until(pilot, lambda: bool(screen.query(".step-note")),
                         what="the waiting line")
        await pilot.pause()  # (not settle: the wait's worker runs on)
        text = " ".join(str(screen.step_log.query_one(".step-note").render()).split())
        until = local_clock(NOW + timedelta(minutes=42, seconds=30))
        assert f"waiting for the key on bastion-us.example.com until {until}" in text
        assert "You can close this" in text
        assert "Wait for my key" not in footer_keys(screen)
        assert "Close" in footer_keys(screen)

        # After a run that stopped at ssh-auth, w is offered; once pressed, not again.
        await pilot.press("r")
        await wait_until(pilot, screen.finished.is_set, what="the run")
        await settle(pilot)
        assert "Wait for my key" in footer_keys(screen)
        await pilot.press("w")
        await wait_until(pilot, lambda: screen.waiting, what="waiting")
        await pilot.pause()
        assert "Wait for my key" not in footer_keys(screen)
        assert "w wait" not in str(screen.query_one("#verdict").render())
        assert screen.step_log.failed is not None  # the run's steps stay in view


def test_the_detail_pane_says_what_a_waiting_row_waits_for() -> None:
    services = FakeServices()
    detail = services.detail("new-warehouse")
    waiting = describe(detail, waiting_status(), NOW).plain
    assert "press enter" not in waiting
    assert "waiting for its key on bastion-us.example.com · 43 min left" in waiting
    assert "the agent brings it up once the key is accepted" in waiting

    secret = replace(sample_statuses()["new-warehouse"], state=TunnelState.WAITING_FOR_SECRET,
                     last_error="your ssh-agent is gone",
                     hint="run `tunnel-tui up new-warehouse` where your ssh-agent runs")
    text = describe(detail, secret, NOW).plain
    assert "press enter" not in text
    assert "waiting for its secret: run `tunnel-tui up new-warehouse`" in text
