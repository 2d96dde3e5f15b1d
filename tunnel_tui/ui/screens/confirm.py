"""A yes/no question (delete a connection, a key)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from tunnel_tui.ui.widgets.footer import WrappingFooter
from tunnel_tui.ui.widgets.form_parts import StateCheckbox


class ConfirmScreen(ModalScreen[bool]):
    """With `option`, a checkbox (on by default) whose answer is `option_checked`.

    The footer shows both answers: esc Cancel (the focused, default button) and
    `confirm_key` (the label's first letter unless given) for the confirming one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(
        self,
        question: str,
        explanation: str = "",
        *,
        confirm_label: str = "OK",
        confirm_key: str | None = None,
        option: str | None = None,
    ) -> None:
        super().__init__()
        key = confirm_key or confirm_label[0].lower()
        # The button's own word in the footer: bound on this instance's bindings.
        self._bindings.bind(key, "confirm", confirm_label)
        self.question = question
        self.explanation = explanation
        self.confirm_label = confirm_label
        self.option = option
        self.option_checked = option is not None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            if self.explanation:
                yield Static(self.explanation, classes="dialog-text")
            if self.option is not None:
                yield StateCheckbox(self.option, value=True, id="confirm-option")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.confirm_label, id="confirm", variant="error")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.option_checked = event.value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class PromptScreen(ModalScreen[str | None]):
    """One line of text (a key name)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, question: str, *, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.value = value

    def compose(self) -> ComposeResult:
        from textual.widgets import Input

        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("OK", id="ok", variant="primary")
        yield WrappingFooter()

    def on_input_submitted(self) -> None:
        self._ok()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._ok()
        else:
            self.dismiss(None)

    def _ok(self) -> None:
        from textual.widgets import Input

        value = self.query_one("#prompt-input", Input).value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
