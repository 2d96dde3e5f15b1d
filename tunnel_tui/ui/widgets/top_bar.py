"""The first line: the app's name, then agent state, secret backend and tunnel counts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label


def secrets_words(label: str) -> str:
    """Where secrets are, in words: "keyring: Secret Service", "vault unlocked in the
    agent" (nothing asks again), "vault unlocked", "vault locked"."""
    if label == "vault":
        return "vault unlocked"
    if label == "vault (locked)":
        return "vault locked"
    if label.startswith("vault"):
        return label
    return f"keyring: {label}"


class TopBar(Horizontal):
    agent: reactive[str] = reactive("…")
    secrets: reactive[str] = reactive("…")
    up_count: reactive[int] = reactive(0)
    total: reactive[int] = reactive(0)

    def __init__(self, title: str = "tunnel-tui", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._title = title

    def compose(self) -> ComposeResult:
        yield Label(self._title, id="app-title")
        yield Label("", id="app-facts")

    def _update(self) -> None:
        if not self.is_mounted:
            return
        facts = (
            f"agent: {self.agent} · {secrets_words(self.secrets)} · "
            f"{self.up_count} up / {self.total}"
        )
        self.query_one("#app-facts", Label).update(facts)

    def watch_agent(self) -> None:
        self._update()

    def watch_secrets(self) -> None:
        self._update()

    def watch_up_count(self) -> None:
        self._update()

    def watch_total(self) -> None:
        self._update()

    def on_mount(self) -> None:
        self._update()
