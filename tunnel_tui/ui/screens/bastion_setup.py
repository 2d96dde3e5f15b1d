"""What the bastion admin runs for a key (`tunnel-tui bastion-setup`): the same script,
scrollable, with a copy key. Opened from the public-key screen (b)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Key
from tunnel_tui.ui.clipboard import copy_reaches_clipboard
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.widgets.footer import WrappingFooter


class BastionSetupScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    #setup-dialog { width: 100; height: 90%; }
    #setup-scroll { height: 1fr; background: $boost; }
    #setup-script { width: auto; text-wrap: nowrap; padding: 0 1; }
    """

    BINDINGS = [
        Binding("c", "copy", "Copy", id="setup.copy"),
        Binding("escape", "close", "Close", id="setup.close"),
    ]

    def __init__(self, services: Services, key: Key) -> None:
        super().__init__()
        self.services = services
        self.key = key
        self.script = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="setup-dialog"):
            yield Label(f"Bastion setup for the key “{self.key.name}”", classes="dialog-title")
            yield Static("Send this to the bastion admin: it runs as root on each host it names "
                         "(also: tunnel-tui bastion-setup NAME).", classes="dialog-text")
            with ScrollableContainer(id="setup-scroll"):
                yield Static("", id="setup-script", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Copy", id="copy")
                yield Button("Close", id="close", variant="primary")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, thread=True)
    def load(self) -> None:
        try:
            text = self.services.bastion_setup(self.key)
        except TunnelTuiError as exc:
            text = exc.render()
        self.app.call_from_thread(self._show, text)

    def _show(self, text: str) -> None:
        self.script = text
        self.query_one("#setup-script", Static).update(text)

    def action_copy(self) -> None:
        if not self.script:
            return
        self.app.copy_to_clipboard(self.script)
        if copy_reaches_clipboard():
            self.notify("Bastion setup copied.")
        else:
            self.notify("This terminal may not take copies from apps: select the script with "
                        "the mouse to copy it.", title="Select the script to copy")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
