"""No OS keyring is usable: unlock (or create) the encrypted vault with a passphrase."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.secret import Secret
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.widgets.footer import WrappingFooter


class VaultScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Later", id="vault.cancel")]

    def __init__(self, services: Services, *, reason: str = "") -> None:
        super().__init__()
        self.services = services
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="vault-dialog"):
            yield Label("Unlock the vault", classes="dialog-title")
            yield Static(
                "No OS keyring is usable here, so keys and passwords are kept in an "
                "encrypted file (scrypt + AES-256-GCM). Enter its passphrase; the first "
                "time, this creates the vault.",
                classes="dialog-text",
            )
            if self.reason:
                yield Static(self.reason, classes="dialog-text muted")
            yield Input(password=True, placeholder="vault passphrase", id="passphrase")
            yield Label("", id="vault-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Later", id="cancel")
                yield Button("Unlock", id="unlock", variant="primary")
        yield WrappingFooter()

    @on(Input.Submitted)
    @on(Button.Pressed, "#unlock")
    def _unlock(self) -> None:
        value = self.query_one("#passphrase", Input).value
        if not value:
            self.query_one("#vault-error", Label).update("✕ Enter a passphrase")
            return
        self.query_one("#unlock", Button).disabled = True
        self.unlock(Secret(value))

    @work(exclusive=True, thread=True)
    def unlock(self, passphrase: Secret) -> None:
        try:
            self.services.unlock_vault(passphrase)
        except TunnelTuiError as exc:
            self.app.call_from_thread(self._failed, exc.message)
            return
        self.app.call_from_thread(self.dismiss, True)

    def _failed(self, message: str) -> None:
        self.query_one("#vault-error", Label).update(f"✕ {message}")
        self.query_one("#unlock", Button).disabled = False
        box = self.query_one("#passphrase", Input)
        box.value = ""
        box.focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
