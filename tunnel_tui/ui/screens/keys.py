"""Keys: type, fingerprint, age and users; generate, show, delete unused, rotate.

The note under the table tells where the highlighted key lives (our keyring, or the
user's ssh-agent) and its certificate's principals and validity; a key whose
certificate has expired or expires within a day is marked with "!" in the list."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Static

from tunnel_tui.core.certificates import needs_attention, stored_certificate
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Key, KeyType, SshEndpoint
from tunnel_tui.ui import display
from tunnel_tui.ui.messages import StartRotation
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.vault_gate import unlock_or_report
from tunnel_tui.ui.widgets.footer import FooterYieldsToDialogs, WrappingFooter

KEYS_NOTE = "Private keys live only in the secret store; several connections may share one."


def key_note(key: Key | None, now: datetime) -> str:
    """Where the key lives and, with a certificate, its principals and validity."""
    if key is None:
        return KEYS_NOTE
    where = (
        f"{key.name} lives in your ssh-agent: tunnel-tui holds only its public half."
        if key.in_agent else KEYS_NOTE
    )
    cert = stored_certificate(key)
    if cert is None:
        return where
    mark = "! " if needs_attention(cert.state(now)) else ""
    return f"{where}\n{mark}{cert.summary(now)}"


class KeysScreen(FooterYieldsToDialogs, Screen[None]):
    BINDINGS = [
        Binding("g", "generate", "Generate", id="keys.generate"),
        Binding("p", "public", "Public key", id="keys.public"),
        Binding("enter", "public", "Public key", show=False, id="keys.public2"),
        Binding("delete", "delete", "Delete", id="keys.delete"),
        Binding("r", "rotate", "Rotate", id="keys.rotate"),
        Binding("escape", "close", "Back", id="keys.close"),
    ]

    def __init__(self, services: Services, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self.services = services
        self.clock = clock or (lambda: datetime.now(UTC))
        self._keys: list[Key] = []
        self._users: dict[str, list[str]] = {}
        self._bastions: dict[str, SshEndpoint] = {}
        self.loaded = asyncio.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="keys-area"):
            table: DataTable[object] = DataTable(cursor_type="row", id="keys")
            table.border_title = "Keys"
            yield table
            yield Static(KEYS_NOTE, id="keys-note")
        yield WrappingFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("NAME", key="name", width=16)
        table.add_column("TYPE", key="type", width=7)
        table.add_column("FINGERPRINT", key="fp", width=20)
        table.add_column("CREATED", key="created", width=10)
        self._users_width = max(12, self.app.size.width - 75)
        table.add_column("USED BY", key="users", width=self._users_width)
        self.reload()

    @work(exclusive=True, group="keys")
    async def reload(self) -> None:
        self._keys = await asyncio.to_thread(self.services.keys)
        self._users = await asyncio.to_thread(self.services.key_users)
        connections = await asyncio.to_thread(self.services.connections)
        self._bastions = {c.name: c.bastion for c in connections}
        table = self.query_one(DataTable)
        table.clear()
        now = self.clock()
        for key in sorted(self._keys, key=lambda k: k.name):
            users = self._users.get(key.id, [])
            cert = stored_certificate(key)
            marked = cert is not None and needs_attention(cert.state(now))
            table.add_row(
                Text("! " + display.ellipsize(key.name, 14), style="bold")
                if marked else Text(display.ellipsize(key.name, 16)),
                key.type.value,
                Text(display.ellipsize(key.fingerprint, 20)),
                key.created.strftime("%Y-%m-%d"),
                Text(display.ellipsize(", ".join(users) if users else "unused",
                                       self._users_width)),
                key=key.id,
            )
        self._show_note()
        self.loaded.set()

    @on(DataTable.RowHighlighted, "#keys")
    def _show_note(self) -> None:
        self.query_one("#keys-note", Static).update(key_note(self._selected(), self.clock()))

    def _selected(self) -> Key | None:
        table = self.query_one(DataTable)
        if not self._keys or table.cursor_row < 0:
            return None
        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return next((k for k in self._keys if k.id == row_key.value), None)

    def action_generate(self) -> None:
        from tunnel_tui.ui.screens.confirm import PromptScreen

        def named(name: str | None) -> None:
            if name:
                self.generate(name)

        prompt = PromptScreen("Name of the new ed25519 key", placeholder="team-key")
        self.app.push_screen(prompt, named)

    @work(group="keys-change")
    async def generate(self, name: str) -> None:
        try:
            key = await asyncio.to_thread(self.services.generate_key, name, KeyType.ED25519)
        except TunnelTuiError as exc:
            unlock_or_report(self, self.services, exc, "A new key", lambda: self.generate(name))
            return
        self.notify(f"Generated {key.name} ({key.fingerprint})")
        self.reload()

    def action_public(self) -> None:
        from tunnel_tui.ui.screens.public_key import PublicKeyScreen

        key = self._selected()
        if key is None:
            return
        users = self._users.get(key.id, [])
        bastion = None
        if len({self._bastions.get(u) for u in users}) == 1 and users:
            bastion = self._bastions.get(users[0])  # one bastion: name it in the instruction
        self.app.push_screen(PublicKeyScreen(self.services, key, bastion))

    def action_delete(self) -> None:
        from tunnel_tui.ui.screens.confirm import ConfirmScreen

        key = self._selected()
        if key is None:
            return
        users = self._users.get(key.id, [])
        if users:
            self.notify(
                f"Used by {', '.join(users)}. Remove those connections or rotate them to "
                "another key first.",
                title=f"{key.name} is in use",
                severity="warning",
            )
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.delete(key)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete key {key.name}?",
                "The private key is removed from the secret store; this cannot be undone.",
                confirm_label="Delete",
            ),
            done,
        )

    @work(group="keys-change")
    async def delete(self, key: Key) -> None:
        try:
            await asyncio.to_thread(self.services.delete_key, key.id)
        except TunnelTuiError as exc:
            unlock_or_report(self, self.services, exc, f"Deleting {key.name}",
                             lambda: self.delete(key))
            return
        self.notify(f"Deleted key {key.name}")
        self.reload()

    def action_rotate(self) -> None:
        key = self._selected()
        if key is None:
            return
        users = self._users.get(key.id, [])
        if not users:
            self.notify("No connection uses this key: nothing to rotate.")
            return
        if key.in_agent:  # refused by rotation too; say it before asking anything
            self.notify(
                "tunnel-tui does not own it: rotate it where it lives, then edit the "
                "connection to use the new key from your ssh-agent.",
                title=f"{key.name} lives in your ssh-agent", severity="warning",
            )
            return
        self.post_message(StartRotation(users[0]))

    def action_close(self) -> None:
        self.dismiss(None)
