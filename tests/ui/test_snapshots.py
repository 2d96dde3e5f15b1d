"""Pictures of every screen at 80x24 and 120x36 (deterministic data, frozen clock).

The in-memory service here only feeds the pictures; flows are tested against real
servers in the other files of tests/ui/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.fixtures.ui import FakeServices, frozen_clock
from tunnel_tui.core.history import TunnelHistory
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.services import SecretsState

SIZES = [(80, 24), (120, 36)]


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    # A blinking cursor would make pictures depend on timing.
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


def pressing(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def keys(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


def app(services: FakeServices | None = None) -> TunnelTuiApp:
    return TunnelTuiApp(services or FakeServices(), clock=frozen_clock, open_sandbox=lambda: None)


@pytest.mark.parametrize("size", SIZES)
def test_connection_list(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("down", "down", "down",
                                                                       "down"))


@pytest.mark.parametrize("size", SIZES)
def test_waiting_for_key_row(snap_compare, size) -> None:
    """The agent waits for new-warehouse's key: `◌ waiting-for-key · 43 min left`."""
    from dataclasses import replace
    from datetime import timedelta

    from tests.fixtures.ui import NOW, sample_statuses
    from tunnel_tui.core.status import TunnelState

    statuses = sample_statuses()
    statuses["new-warehouse"] = replace(
        statuses["new-warehouse"], state=TunnelState.WAITING_FOR_KEY, since=NOW,
        wait_until=NOW + timedelta(minutes=42, seconds=30),
        last_error="the bastion does not accept the key yet",
        hint="add this key to ~reader-tunnel/.ssh/authorized_keys on bastion-us.example.com")
    assert snap_compare(app(FakeServices(statuses=statuses)), terminal_size=size,
                        run_before=pressing("down", "down", "down", "down"))


@pytest.mark.parametrize("size", SIZES)
def test_empty_state(snap_compare, size) -> None:
    assert snap_compare(app(FakeServices(connections=[])), terminal_size=size,
                        run_before=pressing())


@pytest.mark.parametrize("size", SIZES)
def test_tunnel_form(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("a"))


@pytest.mark.parametrize("size", SIZES)
def test_tunnel_form_errors(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size,
                        run_before=pressing("a", "x", "tab", "tab", *keys("bad host"), "tab",
                                            *keys("99999"), "ctrl+s"))


@pytest.mark.parametrize("size", SIZES)
def test_validation_log_failed(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("v"))


@pytest.mark.parametrize("size", SIZES)
def test_validation_log_ok(snap_compare, size) -> None:
    ok = [StepResult(step, StepStatus.OK, 3 + i, "fine") for i, step in enumerate(
        ["config", "keyring", "resolve", "tcp", "host-key", "ssh-auth", "channel", "db-tls",
         "db-auth", "query"])]
    assert snap_compare(app(FakeServices(run=ok)), terminal_size=size, run_before=pressing("v"))


def _push(
    make_screen: Callable[[TunnelTuiApp], object],
) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.push_screen(make_screen(pilot.app))  # type: ignore[arg-type]
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_host_key_confirm(snap_compare, size) -> None:
    from tunnel_tui.ui.screens.host_key import HostKeyConfirmScreen

    screen = _push(lambda a: HostKeyConfirmScreen(
        "bastion-eu.example.com:22", "SHA256:3f1cUo0b8sQ2zT7yW1xV9aLk4mN6pR8tU0wX2yZ4bC6"))
    assert snap_compare(app(), terminal_size=size, run_before=screen)


@pytest.mark.parametrize("size", SIZES)
def test_host_key_changed(snap_compare, size) -> None:
    from tunnel_tui.ui.screens.host_key import HostKeyChangedScreen

    screen = _push(lambda a: HostKeyChangedScreen(
        "bastion-eu.example.com", 22,
        "trusted SHA256:3f1cUo0b8sQ2zT7yW1xV9a, offered SHA256:Zq9Yx8Wv7Ut6Sr5Qp4On3M",
        "if the bastion was reinstalled, confirm the new fingerprint with its admin"))
    assert snap_compare(app(), terminal_size=size, run_before=screen)


@pytest.mark.parametrize("size", SIZES)
def test_keys(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("k"))


@pytest.mark.parametrize("size", SIZES)
def test_public_key(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("k", "p"))


@pytest.mark.parametrize("size", SIZES)
def test_rotation_confirmation(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("r"))


@pytest.mark.parametrize("size", SIZES)
def test_rotation(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("r", "tab", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_rotation_stopped(snap_compare, size) -> None:
    from tests.fixtures.ui import ROTATION_STOPPED

    stopped = FakeServices(rotation=ROTATION_STOPPED)
    assert snap_compare(app(stopped), terminal_size=size,
                        run_before=pressing("r", "tab", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_vault_unlock(snap_compare, size) -> None:
    from tunnel_tui.ui.screens.vault import VaultScreen

    async def until_vault(pilot: Pilot[None]) -> None:
        for _ in range(100):  # bounded: the modal opens from a worker thread
            await settle(pilot)
            if isinstance(pilot.app.screen, VaultScreen):
                break
        await settle(pilot)

    locked = FakeServices(secrets=SecretsState("vault", False, "no usable OS keyring"))
    assert snap_compare(app(locked), terminal_size=size, run_before=until_vault)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("question_mark"))


@pytest.mark.parametrize("size", SIZES)
def test_connection_list_light_theme(snap_compare, size) -> None:
    assert snap_compare(app(), terminal_size=size, run_before=pressing("ctrl+t", "down"))


def _history() -> TunnelHistory:
    from tunnel_tui.core.history import Reconnect

    wave = [0, 2, 5, 9, 14, 9, 5, 2, 1, 0, 0, 3, 30, 60, 45, 20, 8, 3, 1, 0]
    return TunnelHistory(
        bytes_in=tuple(v * 1000 for v in wave * 6),
        bytes_out=tuple(v * 40 for v in reversed(wave * 6)),
        channels=tuple(1 + (i // 30) % 3 for i in range(120)),
        reconnects=(Reconnect("2026-11-20T07:50:00Z", "connection reset by peer", None),
                    Reconnect("2026-11-20T08:14:00Z", "keepalive timeout after 15 s", 4.0)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_traffic_pane(snap_compare, size, monkeypatch) -> None:
    """The detail pane of a live tunnel with its last minutes as sparklines."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    services = FakeServices()
    services.histories["analytics-pg"] = _history()
    try:
        assert snap_compare(app(services), terminal_size=size, run_before=pressing())
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
