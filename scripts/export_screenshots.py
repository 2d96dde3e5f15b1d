"""Save an SVG of every screen into screenshots/, from the real app in the sandbox.

    .venv/bin/python scripts/export_screenshots.py [OUT_DIR]

Drives `TunnelTuiApp` with `run_test` at 120x36 and 80x24, in the sandbox of
`tunnel-tui demo` (a throwaway home, the built-in bastion, this machine's PostgreSQL
and MariaDB, an agent): real catalog, vault, agent, validation, waiting for a key,
traffic and rotation. It waits on what the user would see (bounded), never sleeps for
synchronisation. No secret is on any screen (public keys only). Everything it starts
(the sandbox's agent and bastion) is stopped when it ends, fails or is signalled.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Select, Static

from tunnel_tui.core.model import DbKind
from tunnel_tui.core.status import TunnelState
from tunnel_tui.demo.sandbox import Sandbox, sandbox
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.bastion_setup import BastionSetupScreen
from tunnel_tui.ui.screens.confirm import ConfirmScreen
from tunnel_tui.ui.screens.connections import ConnectionsScreen
from tunnel_tui.ui.screens.help import HelpScreen
from tunnel_tui.ui.screens.host_key import HostKeyChangedScreen, HostKeyConfirmScreen
from tunnel_tui.ui.screens.keys import KeysScreen
from tunnel_tui.ui.screens.public_key import PublicKeyScreen
from tunnel_tui.ui.screens.rotation import RotationScreen
from tunnel_tui.ui.screens.rotation_confirm import RotationConfirmScreen
from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.screens.vault import VaultScreen
from tunnel_tui.ui.services import RealServices
from tunnel_tui.ui.widgets.connection_table import ConnectionTable
from tunnel_tui.ui.widgets.traffic_pane import TrafficPane

ROOT = Path(__file__).resolve().parent.parent
SIZES = (((120, 36), ""), ((80, 24), "-80x24"))
TRAFFIC_SAMPLES = 6  # seconds with traffic in the agent's history before the picture
S = TypeVar("S", bound=Screen[Any])


class Shooter:
    """The app under the pilot, and what it saves."""

    def __init__(self, app: TunnelTuiApp, pilot: Pilot[Any], out: Path, suffix: str) -> None:
        self.app = app
        self.pilot = pilot
        self.out = out
        self.suffix = suffix
        self.saved: list[Path] = []

    async def until(self, check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Poll a condition the user would see, bounded in time."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                shown = type(self.app.screen).__name__
                raise TimeoutError(f"{what}: not there after {timeout:.0f} s (showing {shown})")
            await self.pilot.pause(0.05)

    async def screen(self, kind: type[S], what: str, timeout: float = 60.0) -> S:
        await self.until(lambda: isinstance(self.app.screen, kind), what, timeout)
        screen = self.app.screen
        assert isinstance(screen, kind)
        return screen

    async def settle(self) -> None:
        """Every job started so far has finished (only where none runs for long)."""
        await self.pilot.pause()
        await self.app.workers.wait_for_complete()
        await self.pilot.pause()

    async def save(self, name: str) -> None:
        # Toasts are transient (and time out): the pictures show the screens.
        self.app.clear_notifications()
        await self.pilot.pause()
        path = self.out / f"{name}{self.suffix}.svg"
        self.app.save_screenshot(path.name, str(self.out))
        self.saved.append(path)


def state_of(table: ConnectionTable, name: str) -> TunnelState | None:
    status = table.status_of(name)
    return status.state if status is not None else None


async def select(shot: Shooter, main: ConnectionsScreen, name: str) -> None:
    main.select(name)
    await shot.until(lambda: main.table.selected_name == name, f"{name} selected")
    await shot.until(lambda: name in main._details, f"{name}'s details loaded")
    await shot.pilot.pause()


async def bring_up(shot: Shooter, main: ConnectionsScreen, name: str) -> TunnelState:
    """enter on NAME; the state it settles in (up, failed)."""
    await select(shot, main, name)
    await shot.pilot.press("enter")
    settled = (TunnelState.UP, TunnelState.FAILED)
    await shot.until(lambda: state_of(main.table, name) in settled, f"{name} up or failed")
    state = state_of(main.table, name)
    assert state is not None
    return state


async def add_connection(shot: Shooter, box: Sandbox, name: str, kind: DbKind, port: int,
                         database: str, user: str) -> PublicKeyScreen:
    """`a`, the form filled for the sandbox bastion with a generated key, ctrl+s: the
    public key to add to the bastion (which does not have it yet)."""
    await shot.pilot.press("a")
    form = await shot.screen(TunnelFormScreen, "the form")
    await shot.settle()
    form.query_one("#kind", Select).value = kind
    fields = {"name": name, "host": "127.0.0.1", "port": str(port), "database": database,
              "user": user, "ssh-host": box.bastion.host, "ssh-port": str(box.bastion.port),
              "ssh-user": box.bastion.user}
    for field, value in fields.items():
        form.query_one(f"#{field}", Input).value = value
    await shot.pilot.pause()
    await shot.pilot.press("ctrl+s")
    public = await shot.screen(PublicKeyScreen, f"{name}'s public key")
    await shot.until(lambda: bool(public.line), "the public key line")
    return public


async def traffic(shot: Shooter, main: ConnectionsScreen, name: str) -> None:
    """Queries through NAME's local port until the agent's history (sampled once a
    second) has TRAFFIC_SAMPLES seconds with traffic, and the pane draws them."""
    status = main.table.status_of(name)
    assert status is not None and status.local_port is not None
    conn = await asyncpg.connect(host=status.local_host or "127.0.0.1", port=status.local_port,
                                 user="postgres", database="postgres", timeout=20)
    services = main.services
    deadline = time.monotonic() + 60
    try:
        for round_ in range(600):
            history = await services.history(name)
            busy = sum(1 for v in history.bytes_in if v) if history else 0
            if busy >= TRAFFIC_SAMPLES:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the agent's history of {name} has {busy} busy seconds")
            rows = 200 + 150 * (round_ % 7)  # a varying load, so the sparkline has a shape
            await conn.fetch("SELECT repeat('x', 100) FROM generate_series(1, $1)", rows)
            await shot.pilot.pause(0.25)  # pacing the load over several 1 s samples
    finally:
        await conn.close()
    pane = main.query_one(TrafficPane)

    def drawn() -> bool:
        history = pane.history
        return (pane.display and history is not None
                and sum(1 for v in history.bytes_in if v) >= TRAFFIC_SAMPLES)

    await shot.until(drawn, f"the traffic pane of {name}", timeout=15)


async def scenes(shot: Shooter, box: Sandbox, services: RealServices) -> None:
    app, pilot = shot.app, shot.pilot
    main = await shot.screen(ConnectionsScreen, "the connection list")
    await shot.until(main.loaded.is_set, "connections loaded")
    await shot.settle()
    main.table.focus()
    for name in ("sandbox-pg", "sandbox-mariadb"):
        state = await bring_up(shot, main, name)
        if state is not TunnelState.UP:
            raise RuntimeError(f"{name} did not come up: {main.table.status_of(name)}")

    # Validation of a working connection.
    await select(shot, main, "sandbox-pg")
    await pilot.press("v")
    log = await shot.screen(ValidationScreen, "the validation log")
    await shot.until(log.finished.is_set, "validation finished")
    await shot.settle()
    await shot.save("validation")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")

    # The form, filled, then with errors; Esc asks before throwing it away.
    await pilot.press("a")
    form = await shot.screen(TunnelFormScreen, "the form")
    await shot.settle()
    for field, value in {"name": "analytics-pg", "host": "10.0.12.34",
                         "database": "analytics", "user": "reader",
                         "ssh-host": "bastion-eu.example.com",
                         "ssh-user": "reader-tunnel"}.items():
        form.query_one(f"#{field}", Input).value = value
    await pilot.pause()
    await shot.save("form")
    form.query_one("#host", Input).value = "bad host"
    form.query_one("#ssh-user", Input).value = ""
    form.query_one("#port", Input).value = "99999"
    await pilot.press("ctrl+s")
    await shot.until(lambda: bool(form.errors), "the form's errors")
    await shot.save("form-errors")
    await pilot.press("escape")
    await shot.screen(ConfirmScreen, "Discard changes?")
    await pilot.click("#confirm")
    await shot.screen(ConnectionsScreen, "back on the list")

    # A new connection whose key is not on the bastion: its public key, the bastion
    # setup, a validation that stops at ssh-auth, and `up` failing with the reason.
    public = await add_connection(shot, box, "reports-mysql", DbKind.MYSQL, 3306, "mysql",
                                  "root")
    await shot.save("public-key")
    await pilot.press("b")
    setup = await shot.screen(BastionSetupScreen, "the bastion setup")
    await shot.until(lambda: bool(setup.script), "the bastion setup script")
    await shot.save("bastion-setup")
    await pilot.press("escape")
    await shot.until(lambda: app.screen is public, "back on the public key")
    await pilot.click("#validate")
    log = await shot.screen(ValidationScreen, "the validation of reports-mysql")
    await shot.until(log.finished.is_set, "validation finished", timeout=90)
    await shot.settle()
    if log.succeeded:
        raise RuntimeError("reports-mysql validated with a key the bastion does not have")
    await shot.save("validation-failed")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")
    if await bring_up(shot, main, "reports-mysql") is not TunnelState.FAILED:
        raise RuntimeError("reports-mysql came up with a key the bastion does not have")
    await shot.until(lambda: "-error" in main.query_one("#detail").classes,
                     "the detail pane's error")
    await shot.save("connection-failed")

    # Another one, handed to the agent to wait for its key.
    await add_connection(shot, box, "warehouse-pg", DbKind.POSTGRESQL, 5432, "postgres",
                         "postgres")
    await pilot.click("#wait")
    log = await shot.screen(ValidationScreen, "the validation of warehouse-pg")
    countdown = log.query_one("#countdown", Static)
    await shot.until(lambda: "waiting for the key" in str(countdown.render()),
                     "the countdown of the wait", timeout=90)
    await shot.save("validation-waiting")
    await pilot.press("escape")  # the agent goes on waiting
    await shot.screen(ConnectionsScreen, "back on the list")
    await shot.until(lambda: state_of(main.table, "warehouse-pg") is TunnelState.WAITING_FOR_KEY,
                     "warehouse-pg waiting for its key")
    await select(shot, main, "warehouse-pg")
    await shot.save("waiting-for-key")

    # The list with every state, the live tunnel's traffic under its details.
    await select(shot, main, "sandbox-pg")
    await traffic(shot, main, "sandbox-pg")
    await shot.save("connections")
    await pilot.press("ctrl+t")
    await shot.until(lambda: not app.current_theme.dark, "the light theme")
    await pilot.pause()
    await shot.save("connections-light")
    await pilot.press("ctrl+t")
    await shot.until(lambda: app.current_theme.dark, "the dark theme")

    # Delete asks, and offers to take the key's line off the bastion (cancelled here).
    await select(shot, main, "sandbox-mariadb")
    await pilot.press("delete")
    confirm = await shot.screen(ConfirmScreen, "the delete confirmation")
    if confirm.option is None:
        raise RuntimeError("the delete confirmation offers no bastion-line option")
    await shot.save("delete-confirm")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")

    # Keys, and the dialogs a bastion's host key brings up (the sandbox's own key).
    await pilot.press("k")
    keys = await shot.screen(KeysScreen, "the keys")
    await shot.until(keys.loaded.is_set, "keys loaded")
    await shot.settle()
    await shot.save("keys")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")
    bastion = box.bastion
    where = f"{bastion.host}:{bastion.port}"
    app.push_screen(HostKeyConfirmScreen(where, bastion.host_fingerprint))
    await shot.settle()
    await shot.save("host-key")
    await pilot.press("escape")
    app.push_screen(HostKeyChangedScreen(
        bastion.host, bastion.port,
        f"bastion {where}: HOST KEY CHANGED (now SHA256:Zq9Yx8Wv7Ut6Sr5Qp4On3M…); "
        "someone may be intercepting the connection", None))
    await shot.settle()
    await shot.save("host-key-changed")
    await pilot.press("escape")
    app.push_screen(VaultScreen(services))
    await shot.settle()
    await shot.save("vault")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")
    await pilot.press("question_mark")
    await shot.screen(HelpScreen, "the help")
    await shot.settle()
    await shot.save("help")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")

    # Rotation: asked first, then its steps against the sandbox bastion.
    await select(shot, main, "sandbox-pg")
    await pilot.press("r")
    ask = await shot.screen(RotationConfirmScreen, "the rotation confirmation")
    await shot.until(lambda: bool(ask.choices), "what the rotation will do")
    await pilot.pause()
    await shot.save("rotation-confirm")
    await pilot.click("#rotate")
    rotation = await shot.screen(RotationScreen, "the rotation")
    await shot.until(rotation.finished.is_set, "the rotation finished", timeout=120)
    await shot.settle()
    if not rotation.succeeded:
        raise RuntimeError("the rotation of sandbox-pg did not succeed")
    await shot.save("rotation")
    await pilot.press("escape")
    await shot.screen(ConnectionsScreen, "back on the list")


async def shoot(out: Path, size: tuple[int, int], suffix: str) -> list[Path]:
    with sandbox() as box:  # its agent and bastion stop when this block ends, however
        services = RealServices(box.home, vault_passphrase=box.passphrase)
        app = TunnelTuiApp(services, title="tunnel-tui sandbox", refresh_seconds=0.5,
                           in_sandbox=True)
        async with app.run_test(size=size) as pilot:
            shot = Shooter(app, pilot, out, suffix)
            await scenes(shot, box, services)
        return shot.saved


async def shoot_all(out: Path) -> list[Path]:
    # SIGTERM/SIGHUP end the run like Ctrl-C: the task is cancelled, and the with-blocks
    # stop the app, the agent and the bastion on the way out.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, task.cancel)
    saved: list[Path] = []
    for size, suffix in SIZES:
        saved += await shoot(out, size, suffix)
    return saved


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    try:
        saved = asyncio.run(shoot_all(out))
    except asyncio.CancelledError:
        raise SystemExit("stopped by a signal (the sandbox's agent and bastion are stopped)") \
            from None
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
