"""Key rotation progress: generate → store → install → verify → switch → remove old."""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.widgets.footer import FooterYieldsToDialogs, WrappingFooter
from tunnel_tui.ui.widgets.step_log import StepLog

NOT_AVAILABLE = "Key rotation is not available in this build yet."


class RotationScreen(FooterYieldsToDialogs, Screen[bool]):
    BINDINGS = [
        Binding("r", "retry", "Resume", id="rotate.retry"),
        Binding("escape", "close", "Close", id="rotate.close"),
    ]

    def __init__(self, services: Services, name: str) -> None:
        super().__init__()
        self.services = services
        self.connection_name = name
        self.succeeded: bool | None = None
        self.finished = asyncio.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="rotation", classes="panel") as box:
            box.border_title = f"Rotate the key of {self.connection_name}"
            yield StepLog(id="steps")
            yield Static("", id="verdict")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.run_rotation()

    @work(exclusive=True, group="rotate")
    async def run_rotation(self) -> None:
        log = self.query_one(StepLog)
        verdict = self.query_one("#verdict", Static)
        log.clear_steps()
        verdict.update("")
        self.finished.clear()
        self.succeeded = None
        self.refresh_bindings()
        if not self.services.rotation_available():
            verdict.update(NOT_AVAILABLE)
            self.succeeded = False
            self.finished.set()
            return
        try:
            async for result in self.services.rotate(self.connection_name):
                log.drop_pending()
                log.show(result)
                if result.status is StepStatus.OK:
                    log.pending("next")
        except TunnelTuiError as exc:
            log.drop_pending()
            log.show(StepResult("rotate", StepStatus.FAIL, 0.0, exc.message, exc.hint))
        log.drop_pending()
        failed = log.failed
        self.succeeded = failed is None
        if failed is None:
            verdict.update(
                "[$success]✓ Rotated: the new key is live; open sessions kept running.[/]"
            )
        else:
            verdict.update(
                f"[$error]✕ stopped at {failed.step}[/] — r resumes from the recorded step; "
                "the old key still works."
            )
        self.finished.set()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.succeeded is False  # only a stopped rotation can resume
        return True

    def action_retry(self) -> None:
        self.run_rotation()

    def action_close(self) -> None:
        self.workers.cancel_group(self, "rotate")
        self.dismiss(bool(self.succeeded))
