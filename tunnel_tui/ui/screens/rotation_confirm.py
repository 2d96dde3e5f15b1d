"""Asked before a key rotation: what will happen, or — when a rotation of this key
stopped half-way — Resume or Roll back. Cancel is the default."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.widgets.footer import WrappingFooter

ROTATE, RESUME, ROLL_BACK = "rotate", "resume", "roll-back"


class RotationConfirmScreen(ModalScreen[str | None]):
    """Dismisses with "rotate", "resume", "roll-back" or None (cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rotate-confirm.cancel")]

    def __init__(self, services: Services, name: str) -> None:
        super().__init__()
        self.services = services
        self.connection_name = name
        self.choices: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="rotate-confirm"):
            yield Label(f"Rotate the key of {self.connection_name}?", classes="dialog-title",
                        id="rotate-question")
            yield Static("…", classes="dialog-text", id="rotate-plan")
            with Horizontal(classes="buttons", id="rotate-buttons"):
                yield Button("Cancel", id="cancel")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        self.load()

    @work(exclusive=True, thread=True, group="rotate-confirm")
    def load(self) -> None:
        try:
            detail = self.services.detail(self.connection_name)
            stopped = self.services.stopped_rotation(self.connection_name)
            bastions = {c.name: c.bastion for c in self.services.connections()}
        except (TunnelTuiError, KeyError, OSError) as exc:
            message = getattr(exc, "message", str(exc))
            self.app.call_from_thread(self._show, f"✕ {message}", [])
            return
        users = detail.key_users or [self.connection_name]
        hosts = sorted({bastions[u].host for u in users if u in bastions})
        hosts = hosts or [detail.connection.bastion.host]
        where = hosts[0] if len(hosts) == 1 else "each bastion"
        old = detail.key.name if detail.key else detail.connection.key_id
        kind = detail.key.type.value if detail.key else "ed25519"
        if stopped is not None:
            text = (
                f"A rotation of the key {stopped.old_key} → {stopped.new_key} "
                f"{stopped.summary}. Resume finishes it from there"
                + ("; Roll back takes the new key off the bastion and deletes it, the old "
                   "key stays." if stopped.can_roll_back else
                   "; it is past the switch, so it can only be finished.")
            )
            choices = [RESUME] + ([ROLL_BACK] if stopped.can_roll_back else [])
        else:
            moved = ", ".join(users)
            lines = [
                f"A new {kind} key replaces {old}:",
                f"1. a quick check that {where} answers and accepts the current key "
                "(nothing is written before)",
                f"2. the new key is installed on {where} through the current one",
                f"3. {moved} {'switch' if len(users) > 1 else 'switches'} to it (open "
                "database sessions keep running)",
                f"4. the old key's line is removed from {where}",
            ]
            if len(hosts) > 1:
                lines.append(f"Bastions: {', '.join(hosts)}")
            text = "\n".join(lines)
            choices = [ROTATE]
        self.app.call_from_thread(self._show, text, choices)

    def _show(self, text: str, choices: list[str]) -> None:
        self.choices = choices
        self.query_one("#rotate-plan", Static).update(text)
        if RESUME in choices:
            self.query_one("#rotate-question", Label).update(
                f"The key rotation of {self.connection_name} stopped")
        buttons = self.query_one("#rotate-buttons")
        labels = {ROTATE: "Rotate", RESUME: "Resume", ROLL_BACK: "Roll back"}
        for choice in choices:
            if choice == ROLL_BACK:
                buttons.mount(Button(labels[choice], id=choice, variant="error"))
            else:
                buttons.mount(Button(labels[choice], id=choice, variant="primary"))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        choice = event.button.id
        self.dismiss(choice if choice in self.choices else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
