"""No OS keyring is usable: unlock the encrypted vault with its passphrase, or create
it (the passphrase asked twice). Every action that needs the vault opens this."""

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

    def __init__(self, services: Services, *, reason: str = "",
                 creating: bool | None = None) -> None:
        super().__init__()
        self.services = services
        self.reason = reason
        # None: ask the services whether a vault exists (a new one is asked twice).
        self.creating = creating

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="vault-dialog"):
            yield Label("Unlock the vault", classes="dialog-title", id="vault-title")
            yield Static("", classes="dialog-text", id="vault-text")
            if self.reason:
                yield Static(self.reason, classes="dialog-text muted", id="vault-reason")
            yield Input(password=True, placeholder="vault passphrase", id="passphrase")
            yield Input(password=True, placeholder="the same passphrase again", id="again")
            yield Label("", id="vault-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Later", id="cancel")
                yield Button("Unlock", id="unlock", variant="primary")
        yield WrappingFooter()

    def on_mount(self) -> None:
        ask = self.creating is None
        self._show_mode(bool(self.creating))
        if ask:
            self.check_exists()

    @work(exclusive=True, thread=True, group="vault-exists")
    def check_exists(self) -> None:
        try:
            creating = not self.services.vault_exists()
        except (TunnelTuiError, OSError):
            creating = False
        self.app.call_from_thread(self._show_mode, creating)

    def _show_mode(self, creating: bool) -> None:
        self.creating = creating
        self.query_one("#again").display = creating
        self.query_one("#vault-title", Label).update(
            "Create the vault" if creating else "Unlock the vault")
        self.query_one("#unlock", Button).label = "Create" if creating else "Unlock"
        self.query_one("#vault-text", Static).update(
            "No OS keyring is usable here, so keys and passwords are kept in an encrypted "
            "file (scrypt + AES-256-GCM). "
            + ("Choose its passphrase, and type it twice: it cannot be recovered."
               if creating else "Enter its passphrase.")
        )

    @on(Input.Submitted, "#passphrase")
    def _next(self) -> None:
        if self.creating:
            self.query_one("#again", Input).focus()
        else:
            self._unlock()

    @on(Input.Submitted, "#again")
    @on(Button.Pressed, "#unlock")
    def _unlock(self) -> None:
        value = self.query_one("#passphrase", Input).value
        error = self.query_one("#vault-error", Label)
        if not value:
            error.update("✕ Enter a passphrase")
            error.display = True
            return
        if self.creating and value != self.query_one("#again", Input).value:
            error.update("✕ The two passphrases differ: type them again")
            error.display = True
            for box in self.query(Input):
                box.value = ""
            self.query_one("#passphrase", Input).focus()
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
        error = self.query_one("#vault-error", Label)
        error.update(f"✕ {message}")
        error.display = True
        self.query_one("#unlock", Button).disabled = False
        for box in self.query(Input):
            box.value = ""
        self.query_one("#passphrase", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
