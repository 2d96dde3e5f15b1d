"""Command palette: every action of the list once (on the selected connection), and a
jump to any connection."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tunnel_tui.ui.screens.connections import ConnectionsScreen

# (action of the list screen, title, help); titles get the selected connection's name.
LIST_ACTIONS: list[tuple[str, str, str]] = [
    ("toggle_tunnel", "Up/Down", "Bring the tunnel up, or take it down"),
    ("edit", "Edit", "Open the connection in the form"),
    ("copy", "Copy", "Copy the ready client command"),
    ("open_client", "Open client for", "psql or mariadb in this terminal (the app waits)"),
    ("delete", "Delete", "Delete the connection (asks first)"),
    ("validate", "Validate", "Check it step by step"),
    ("rotate", "Rotate key of", "Replace its key with a new one, no downtime"),
]


class TunnelCommands(Provider):
    def _main(self) -> ConnectionsScreen | None:
        from tunnel_tui.ui.screens.connections import ConnectionsScreen

        return next(
            (s for s in self.app.screen_stack if isinstance(s, ConnectionsScreen)), None
        )

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        main = self._main()
        if main is None:
            return []
        commands: list[tuple[str, Callable[[], object], str]] = [
            ("Add connection", main.action_add, "Open the tunnel form"),
            ("SSH keys", main.action_keys, "The keys screen: list, generate, delete, rotate"),
        ]
        selected = main.table.selected_name if main.loaded.is_set() else None
        if selected is not None:
            for action, title, help_text in LIST_ACTIONS:
                method = getattr(main, f"action_{action}")
                commands.append((f"{title} {selected}", method, help_text))
        for name in main.connection_names:
            if name != selected:
                commands.append((f"Go to {name}", partial(main.select, name), "Select in the list"))
        return commands

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
