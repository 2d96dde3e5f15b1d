"""`o` on the list: the database's own client (psql, mariadb) for the selected
connection, in this terminal. The app suspends, `tunnel-tui exec NAME` runs through the
same action as the CLI (services.open_client), and the app resumes when it exits."""

from __future__ import annotations

import sys
from typing import Any

from textual.app import SuspendNotSupported
from textual.screen import Screen

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.ui.services import Services


def open_client(screen: Screen[Any], services: Services, name: str) -> None:
    """Run NAME's client with the app suspended (call from the app's thread)."""
    try:
        with screen.app.suspend():
            print(f"tunnel-tui: {name}'s client; quit it to return to the app.",
                  file=sys.stderr)
            try:
                code = services.open_client(name)
            except KeyboardInterrupt:  # Ctrl-C while the tunnel was still coming up
                code = 130
    except SuspendNotSupported:
        screen.notify(f"This terminal cannot hand over to a client: run tunnel-tui exec {name}",
                      severity="warning")
        return
    except TunnelTuiError as exc:
        screen.notify(exc.hint or "", title=exc.message, severity="error")
        return
    if code:
        screen.notify(f"{name}: the client exited with status {code}")
