"""A key's public line, ready for authorized_keys, with copy and the next step."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, HorizontalScroll, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, Switch

from tunnel_tui.core.catalog import KEY_COMMENT_PREFIX
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Key, SshEndpoint
from tunnel_tui.ui.clipboard import copy_reaches_clipboard
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.widgets.footer import WrappingFooter

RESTRICTED_OFF = "restricted form: off (t turns it on: only port forwarding to its targets)"
RESTRICTED_ON = "restricted form: on (only port forwarding to this key's targets)"


class PublicKeyScreen(ModalScreen[str | None]):
    """Dismisses with "validate", "wait" or None."""

    BINDINGS = [
        Binding("c", "copy", "Copy", id="pubkey.copy"),
        Binding("t", "toggle_restricted", "Restricted", id="pubkey.restricted"),
        Binding("b", "bastion_setup", "Bastion setup", id="pubkey.bastion_setup"),
        Binding("escape", "close", "Close", id="pubkey.close"),
    ]

    def __init__(
        self,
        services: Services,
        key: Key,
        bastion: SshEndpoint | None = None,
        *,
        offer_validate: bool = False,
    ) -> None:
        super().__init__()
        self.services = services
        self.key = key
        self.bastion = bastion
        self.offer_validate = offer_validate
        self.line = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="pubkey-dialog"):
            yield Label(f"Public key “{self.key.name}”", classes="dialog-title")
            with HorizontalScroll(id="pubkey-scroll"):
                yield Static("", id="pubkey-line")  # one line, unbroken: it scrolls
            with Horizontal(classes="switch-row"):
                yield Switch(value=False, id="restricted")
                yield Label(RESTRICTED_OFF, id="restricted-label")
            if self.bastion is not None:
                where = (
                    f"Add this line to ~{self.bastion.user}/.ssh/authorized_keys on "
                    f"{self.bastion.host}"
                )
            else:
                where = "Add this line to ~USER/.ssh/authorized_keys on each bastion that uses it."
            yield Static(where, classes="dialog-text", id="pubkey-where")
            with Horizontal(classes="buttons"):
                yield Button("Copy", id="copy")
                if self.offer_validate:
                    yield Button("Wait for the key", id="wait")
                    yield Button("Validate now", id="validate", variant="primary")
                else:
                    yield Button("Close", id="close", variant="primary")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.load_line(False)

    @work(exclusive=True, thread=True)
    def load_line(self, restricted: bool) -> None:
        try:
            line = self.services.authorized_keys_line(self.key, restricted=restricted)
        except TunnelTuiError as exc:
            line = f"{self.key.public_key} {KEY_COMMENT_PREFIX}{self.key.name}"
            if restricted:
                self.app.call_from_thread(self.notify, str(exc), severity="warning")
        self.app.call_from_thread(self._show, line)

    def _show(self, line: str) -> None:
        self.line = line
        self.query_one("#pubkey-line", Static).update(line)

    @on(Switch.Changed, "#restricted")
    def _restricted(self, event: Switch.Changed) -> None:
        self.query_one("#restricted-label", Label).update(
            RESTRICTED_ON if event.value else RESTRICTED_OFF
        )
        self.load_line(event.value)

    def action_toggle_restricted(self) -> None:
        switch = self.query_one("#restricted", Switch)
        switch.value = not switch.value

    def action_copy(self) -> None:
        if not self.line:
            return
        self.app.copy_to_clipboard(self.line)
        if copy_reaches_clipboard():
            self.notify("Public key copied.")
        else:
            self.notify("This terminal may not take copies from apps: select the line above "
                        "with the mouse to copy it.", title="Select the line to copy")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        elif event.button.id in ("validate", "wait"):
            self.dismiss(event.button.id)
        else:
            self.dismiss(None)

    def action_bastion_setup(self) -> None:
        from tunnel_tui.ui.screens.bastion_setup import BastionSetupScreen

        self.app.push_screen(BastionSetupScreen(self.services, self.key))

    def action_close(self) -> None:
        self.dismiss(None)
