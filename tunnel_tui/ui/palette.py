"""Command palette: jump to a connection, or run an action on it."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tunnel_tui.ui.messages import ShowKeys, StartRotation, StartValidation


class TunnelCommands(Provider):
    def _names(self) -> list[str]:
        from tunnel_tui.ui.screens.connections import ConnectionsScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, ConnectionsScreen):
                return list(screen._connections)
        return []

    def _commands(self) -> list[tuple[str, object, str]]:
        from tunnel_tui.ui.screens.connections import ConnectionsScreen

        main = next((s for s in self.app.screen_stack if isinstance(s, ConnectionsScreen)), None)
        commands: list[tuple[str, object, str]] = [
            ("Keys", partial(self.app.post_message, ShowKeys()), "List, generate, delete keys"),
        ]
        if main is not None:
            commands.append(("Add connection", main.action_add, "Open the tunnel form"))
            for name in self._names():
                commands += [
                    (f"Go to {name}", partial(main.select, name), "Select in the list"),
                    (
                        f"Validate {name}",
                        partial(self.app.post_message, StartValidation(name)),
                        "Check it step by step",
                    ),
                    (
                        f"Rotate key of {name}",
                        partial(self.app.post_message, StartRotation(name)),
                        "Zero-downtime key rotation",
                    ),
                ]
        return commands

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)  # type: ignore[arg-type]
