"""Key rotation progress: check → generate → store → install → verify → switch →
remove old. A rotation that stopped offers Resume, and Roll back while it can."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.ui.hints import for_the_app
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.vault_gate import needs_vault, unlock_then
from tunnel_tui.ui.widgets.footer import FooterYieldsToDialogs, WrappingFooter
from tunnel_tui.ui.widgets.step_log import StepLog

if TYPE_CHECKING:
    from tunnel_tui.actions.rotate import StoppedRotation


class RotationScreen(FooterYieldsToDialogs, Screen[bool]):
    BINDINGS = [
        Binding("r", "retry", "Resume", id="rotate.retry"),
        Binding("b", "roll_back", "Roll back", id="rotate.rollback"),
        Binding("escape", "close", "Close", id="rotate.close"),
    ]

    def __init__(self, services: Services, name: str, *, action: str = "rotate") -> None:
        super().__init__()
        self.services = services
        self.connection_name = name
        self.action = action  # "rotate", "resume" or "roll-back"
        self.succeeded: bool | None = None
        self.can_roll_back = False
        self.finished = asyncio.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="rotation", classes="panel") as box:
            box.border_title = f"Rotate the key of {self.connection_name}"
            yield StepLog(id="steps")
            yield Static("", id="verdict")
        yield WrappingFooter()

    def on_mount(self) -> None:
        if self.action == "roll-back":
            self.run_roll_back()
        else:
            self.run_rotation()

    def _started(self) -> None:
        self.query_one(StepLog).clear_steps()
        self.query_one("#verdict", Static).update("")
        self.finished.clear()
        self.succeeded = None
        self.can_roll_back = False
        self.refresh_bindings()

    @work(exclusive=True, group="rotate")
    async def run_rotation(self) -> None:
        log = self.query_one(StepLog)
        verdict = self.query_one("#verdict", Static)
        self._started()
        try:
            async for result in self.services.rotate(self.connection_name):
                log.drop_pending()
                log.show(for_the_app(result))
                if result.status is StepStatus.OK:
                    log.pending("next")
        except TunnelTuiError as exc:
            log.drop_pending()
            log.show(StepResult("rotate", StepStatus.FAIL, 0.0, exc.message, exc.hint))
        log.drop_pending()
        failed = log.failed
        if failed is None:
            verdict.update(
                "[$success]✓ Rotated: the new key is live; open sessions kept running.[/]"
            )
        else:
            stopped = await asyncio.to_thread(self._stopped)
            self.can_roll_back = bool(stopped and stopped.can_roll_back)
            if stopped is None:
                keys = "r tries again; nothing was changed."
            elif self.can_roll_back:
                keys = "r resumes from there · b rolls back; the old key still works."
            else:
                keys = "r resumes from there (it is past the switch)."
            verdict.update(f"[$error]✕ stopped at {failed.step}[/] — {keys}")
        self.succeeded = failed is None
        self.finished.set()
        self.refresh_bindings()
        if failed is not None and needs_vault(failed.detail, failed.hint):
            # The keys are in the vault and it is locked here: ask, then run again.
            unlock_then(self.app, self.services, "Rotating the key", self.run_rotation)

    def _stopped(self) -> StoppedRotation | None:
        try:
            return self.services.stopped_rotation(self.connection_name)
        except (TunnelTuiError, OSError):
            return None

    @work(exclusive=True, group="rotate")
    async def run_roll_back(self) -> None:
        verdict = self.query_one("#verdict", Static)
        self._started()
        verdict.update("rolling back…")
        try:
            done = await self.services.roll_back(self.connection_name)
        except TunnelTuiError as exc:
            self.query_one(StepLog).show(
                StepResult("roll back", StepStatus.FAIL, 0.0, exc.message, exc.hint))
            verdict.update("[$error]✕ the roll back did not finish[/] — b tries again.")
            self.can_roll_back = True
            self.succeeded = False
        else:
            verdict.update(f"[$success]✓ Rolled back: {done}[/]")
            self.succeeded = True
        self.finished.set()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.succeeded is False  # only a stopped rotation can resume
        if action == "roll_back":
            return self.succeeded is False and self.can_roll_back
        return True

    def action_retry(self) -> None:
        self.action = "resume"
        self.run_rotation()

    def action_roll_back(self) -> None:
        self.action = "roll-back"
        self.run_roll_back()

    def action_close(self) -> None:
        self.workers.cancel_group(self, "rotate")
        self.dismiss(bool(self.succeeded))
