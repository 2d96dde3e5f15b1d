"""Save an SVG of every screen into screenshots/, from the real app in the sandbox.

    .venv/bin/python scripts/export_screenshots.py [OUT_DIR]

Drives `TunnelTuiApp` with `run_test` (real catalog, vault, agent, validation,
rotation against the sandbox bastion and this machine's databases), waits for workers
instead of sleeping, and writes one file per screen. No secret is on any screen.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from tunnel_tui.demo.sandbox import sandbox
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.connections import ConnectionsScreen
from tunnel_tui.ui.screens.host_key import HostKeyChangedScreen, HostKeyConfirmScreen
from tunnel_tui.ui.screens.rotation import RotationScreen
from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.screens.vault import VaultScreen
from tunnel_tui.ui.services import RealServices
from tunnel_tui.ui.widgets.connection_table import ConnectionTable

ROOT = Path(__file__).resolve().parent.parent


async def until(pilot: Pilot[None], check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.05)


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def shoot(out: Path, size: tuple[int, int], suffix: str = "") -> list[Path]:
    saved: list[Path] = []
    with sandbox() as box:
        services = RealServices(box.home, vault_passphrase=box.passphrase)
        app = TunnelTuiApp(services, title="tunnel-tui sandbox", refresh_seconds=0.5)
        async with app.run_test(size=size) as pilot:

            def save(name: str) -> None:
                path = out / f"{name}{suffix}.svg"
                app.save_screenshot(path.name, str(out))
                saved.append(path)

            await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
            main = app.screen
            assert isinstance(main, ConnectionsScreen)
            await until(pilot, main.loaded.is_set)
            await settle(pilot)
            table = main.query_one(ConnectionTable)
            table.focus()
            table.move_cursor(row=table.get_row_index("sandbox-pg"))
            await pilot.press("enter")

            def pg_up() -> bool:
                status = table.status_of("sandbox-pg")
                return status is not None and status.state.value in ("up", "failed")

            await until(pilot, pg_up)
            await settle(pilot)
            save("connections")

            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, ValidationScreen))
            log = app.screen
            assert isinstance(log, ValidationScreen)
            await until(pilot, log.finished.is_set)
            await settle(pilot)
            save("validation")
            await pilot.press("escape")

            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, TunnelFormScreen))
            form = app.screen
            for field, value in {"name": "analytics-pg", "host": "10.0.12.34",
                                 "database": "analytics", "user": "reader",
                                 "ssh-host": "bastion-eu.example.com",
                                 "ssh-user": "reader-tunnel"}.items():
                form.query_one(f"#{field}", Input).value = value
            await settle(pilot)
            save("form")
            form.query_one("#host", Input).value = "bad host"
            form.query_one("#ssh-user", Input).value = ""
            form.query_one("#port", Input).value = "99999"
            await pilot.press("ctrl+s")
            await settle(pilot)
            save("form-errors")
            await pilot.press("escape")
            await settle(pilot)

            await pilot.press("k")
            await settle(pilot)
            save("keys")
            await pilot.press("p")
            await settle(pilot)
            save("public-key")
            await pilot.press("escape", "escape")
            await settle(pilot)

            bastion = box.bastion
            where = f"{bastion.host}:{bastion.port}"
            app.push_screen(HostKeyConfirmScreen(where, bastion.host_fingerprint))
            await settle(pilot)
            save("host-key")
            await pilot.press("escape")
            app.push_screen(HostKeyChangedScreen(
                bastion.host, bastion.port,
                f"bastion {where}: HOST KEY CHANGED (now SHA256:Zq9Yx8Wv7Ut6Sr5Qp4On3M…); "
                "someone may be intercepting the connection", None))
            await settle(pilot)
            save("host-key-changed")
            await pilot.press("escape")
            app.push_screen(VaultScreen(services))
            await settle(pilot)
            save("vault")
            await pilot.press("escape")
            await pilot.press("question_mark")
            await settle(pilot)
            save("help")
            await pilot.press("escape")
            await settle(pilot)

            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, RotationScreen))
            rotation = app.screen
            assert isinstance(rotation, RotationScreen)
            await until(pilot, rotation.finished.is_set, timeout=120)
            await settle(pilot)
            save("rotation")
            await pilot.press("escape")
            await settle(pilot)
    return saved


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    saved = asyncio.run(shoot(out, (120, 36)))
    saved += asyncio.run(shoot(out, (80, 24), "-80x24"))
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
