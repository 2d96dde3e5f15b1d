"""Host keys: consent before trusting a new one; a hard stop when one changed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tunnel_tui.ui.widgets.footer import WrappingFooter


class HostKeyConfirmScreen(ModalScreen[bool]):
    """Unknown host: show the SHA256 fingerprint; trust only on Accept."""

    BINDINGS = [Binding("escape", "reject", "Reject", id="hostkey.reject")]

    def __init__(self, host: str, fingerprint: str) -> None:
        super().__init__()
        self.host = host
        self.fingerprint = fingerprint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="hostkey-dialog"):
            yield Label(f"Trust {self.host}?", classes="dialog-title")
            yield Static(
                "This bastion is not known yet. Compare its fingerprint with the one "
                "your administrator gave you (ssh-keygen -lf /etc/ssh/ssh_host_*.pub):",
                classes="dialog-text",
            )
            yield Static(self.fingerprint, id="fingerprint")
            with Horizontal(classes="buttons"):
                yield Button("Reject", id="reject")
                yield Button("Accept", id="accept", variant="primary")
        yield WrappingFooter()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "accept")

    def action_reject(self) -> None:
        self.dismiss(False)


class HostKeyChangedScreen(ModalScreen[None]):
    """No accept button on purpose: a changed key may be a man-in-the-middle."""

    BINDINGS = [Binding("escape", "close", "Close", id="hostkey.close")]

    def __init__(self, host: str, port: int, detail: str, hint: str | None) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.detail = detail
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger", id="hostkey-changed"):
            yield Label("⚠ The bastion's host key has CHANGED", classes="dialog-title")
            yield Static(
                "Someone may be intercepting this connection (man-in-the-middle), or the "
                "bastion was reinstalled. Nothing was trusted and nothing was sent.",
                classes="dialog-text",
            )
            yield Static(self.detail, id="hostkey-detail")
            forget = f"tunnel-tui hosts forget {self.host}"
            if self.port != 22:
                forget += f":{self.port}"
            yield Static(
                (self.hint + "\n" if self.hint else "")
                + f"Only if the change is expected (ask the bastion's admin): {forget}",
                classes="dialog-text",
            )
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", variant="error")
        yield WrappingFooter()

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
