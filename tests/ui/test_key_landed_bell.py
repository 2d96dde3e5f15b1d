"""When a tunnel the agent waited for comes up (its key landed), the app rings the bell
and says so, as it does for a failure; the row's time left counts down meanwhile."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.fixtures.ui import NOW, FakeServices, frozen_clock, sample_statuses
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.status import TunnelState
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.connections import ConnectionsScreen
from tunnel_tui.ui.widgets.connection_table import ConnectionTable


async def test_the_bell_rings_when_a_waited_for_key_lands() -> None:
    statuses = sample_statuses()
    waiting = replace(statuses["new-warehouse"], state=TunnelState.WAITING_FOR_KEY, since=NOW,
                      wait_until=NOW + timedelta(minutes=43), last_error=None, hint=None)
    statuses["new-warehouse"] = waiting
    services = FakeServices(statuses=statuses)
    app = TunnelTuiApp(services, clock=frozen_clock, open_sandbox=lambda: None)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until_async(lambda: isinstance(app.screen, ConnectionsScreen), 10,
                               "the list", sleep=pilot.pause)
        screen = app.screen
        assert isinstance(screen, ConnectionsScreen)
        await wait_until_async(screen.loaded.is_set, 10, "loaded", sleep=pilot.pause)
        table = screen.query_one(ConnectionTable)
        row = table.get_row("new-warehouse")
        assert "43 min left" in " ".join(str(cell) for cell in row)

        await services.events_queue.put(waiting)  # still waiting: no bell
        await services.events_queue.put(
            replace(waiting, state=TunnelState.UP, wait_until=None, local_port=8080)
        )
        await wait_until_async(lambda: bells == [1], 10, lambda: f"one bell ({bells})",
                               sleep=pilot.pause)
        status = table.status_of("new-warehouse")
        assert status is not None and status.state is TunnelState.UP
