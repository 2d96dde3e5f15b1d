"""The live validation log: each step as it runs, what broke and what to do about it."""

from __future__ import annotations

import asyncio
import re

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.formatting import local_clock, wait_left
from tunnel_tui.core.logging import redact
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.core.steps import VALIDATION_STEPS, StepResult, StepStatus
from tunnel_tui.ui.clipboard import copy_reaches_clipboard
from tunnel_tui.ui.hints import for_the_app
from tunnel_tui.ui.services import Services
from tunnel_tui.ui.vault_gate import needs_vault, unlock_then
from tunnel_tui.ui.widgets.footer import FooterYieldsToDialogs, WrappingFooter
from tunnel_tui.ui.widgets.step_log import StepLog

FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
WAIT_LIMIT_SECONDS = 60 * 60


def next_step(step: str) -> str | None:
    if step not in VALIDATION_STEPS:
        return None
    index = VALIDATION_STEPS.index(step) + 1
    return VALIDATION_STEPS[index] if index < len(VALIDATION_STEPS) else None


def is_changed_host_key(result: StepResult) -> bool:
    text = f"{result.detail} {result.hint or ''}".lower()
    return "changed" in text or "mismatch" in text or "man-in-the-middle" in text


class ValidationScreen(FooterYieldsToDialogs, Screen[bool]):
    BINDINGS = [
        Binding("r", "retry", "Retry", id="validate.retry"),
        Binding("w", "wait", "Wait for my key", id="validate.wait"),
        Binding("y", "copy_report", "Copy report", id="validate.report"),
        Binding("c", "copy_key", "Copy key", id="validate.copy_key"),
        Binding("escape", "close", "Close", id="validate.close"),
    ]

    def __init__(
        self,
        services: Services,
        name: str,
        *,
        wait_for_key: bool = False,
        retry_seconds: float = 5.0,
        wait_limit_seconds: float = WAIT_LIMIT_SECONDS,
    ) -> None:
        super().__init__()
        self.services = services
        self.connection_name = name
        self.start_waiting = wait_for_key
        self.retry_seconds = retry_seconds
        self.wait_limit_seconds = wait_limit_seconds
        self.succeeded: bool | None = None
        self.waiting = False  # the agent waits for the key: w has nothing more to do
        self.finished = asyncio.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="validation", classes="panel") as box:
            box.border_title = f"Validate {self.connection_name}"
            yield StepLog(id="steps")
            yield Static("", id="verdict")
            yield Static("", id="countdown")  # wraps: the line names the connection
        yield WrappingFooter()

    def on_mount(self) -> None:
        if self.start_waiting:
            self.action_wait()
        else:
            self.run_validation()

    @property
    def step_log(self) -> StepLog:
        return self.query_one(StepLog)

    # -- running -------------------------------------------------------------------
    async def _run_once(self) -> StepResult | None:
        """One pass; returns the failed step (None when every step is ok)."""
        log = self.step_log
        log.clear_steps()
        self.query_one("#verdict", Static).update("")
        log.pending(VALIDATION_STEPS[0])
        try:
            async for result in self.services.validate(
                self.connection_name, on_host_key=self._ask_host_key,
            ):
                log.show(for_the_app(result))
                if result.status is StepStatus.OK:
                    upcoming = next_step(result.step)
                    if upcoming is not None:
                        log.pending(upcoming)
        except TunnelTuiError as exc:
            log.show(StepResult("config", StepStatus.FAIL, 0.0, exc.message, exc.hint))
        log.drop_pending()
        return log.failed

    async def _ask_host_key(self, hop: str, fingerprint: str) -> bool:
        """Asked by validation on first contact with a bastion, with the key it received:
        trust this key? Yes saves exactly that key (validation does), nothing else."""
        from tunnel_tui.ui.screens.host_key import HostKeyConfirmScreen

        if not FINGERPRINT.fullmatch(fingerprint):
            return False  # no key to show, nothing to consent to
        screen = HostKeyConfirmScreen(hop, fingerprint)
        return bool(await self.app.push_screen_wait(screen))  # type: ignore[arg-type]

    @work(exclusive=True, group="validate")
    async def run_validation(self) -> None:
        self.finished.clear()
        failed = await self._run_once()
        await self._conclude(failed)

    async def _conclude(self, failed: StepResult | None) -> None:
        verdict = self.query_one("#verdict", Static)
        self.succeeded = failed is None
        if failed is None:
            verdict.update(f"[$success]✓ {self.connection_name} works: every step passed.[/]")
        else:
            verdict.update(self._stopped_at(failed.step))
        self.finished.set()
        self.refresh_bindings()
        if failed is not None and failed.step == "host-key":
            await self._host_key(failed)
        elif failed is not None and needs_vault(failed.detail, failed.hint):
            # The keys are in the vault and it is locked here: ask, then run again.
            unlock_then(self.app, self.services, f"Validating {self.connection_name}",
                        self.run_validation)

    def _stopped_at(self, step: str) -> str:
        keys = "r retry · y copy report" if self.waiting else (
            "r retry · w wait for my key · y copy report")
        return f"[$error]✕ stopped at {step}[/]  {keys}"

    async def _host_key(self, failed: StepResult) -> None:
        """A changed key: the hard-stop warning. (An unknown key was asked about during
        the run, with its fingerprint; any other host-key failure, e.g. a connection
        reset during the handshake, offers nothing to trust.)"""
        from tunnel_tui.ui.screens.host_key import HostKeyChangedScreen

        if not is_changed_host_key(failed):
            return
        try:
            detail = await asyncio.to_thread(self.services.detail, self.connection_name)
            host, port = detail.connection.bastion.host, detail.connection.bastion.port
        except (TunnelTuiError, KeyError, OSError):
            host, port = "the bastion", 22
        self.app.push_screen(HostKeyChangedScreen(host, port, failed.detail, failed.hint))

    @work(exclusive=True, group="validate")
    async def wait_for_key(self) -> None:
        """Hand the wait to the agent (it goes on after this screen or the app closes),
        then follow it here: the countdown, and the log once the tunnel is up."""
        countdown = self.query_one("#countdown", Static)
        verdict = self.query_one("#verdict", Static)
        self.finished.clear()
        self._set_waiting(True)
        try:
            status = await self.services.wait_for_key(
                self.connection_name, self.wait_limit_seconds
            )
        except TunnelTuiError as exc:
            self._set_waiting(False)
            countdown.update("")
            verdict.update(Text.assemble(("✕ ", "bold"), exc.message,
                                         f"\n→ {exc.hint}" if exc.hint else ""))
            self.finished.set()
            return
        if status.state is TunnelState.WAITING_FOR_KEY:
            if not self.step_log.results:  # handed over before any run: say what happens
                await self._say_waiting(status)
            status = await self._follow_wait(status, countdown)
        self._set_waiting(False)
        countdown.update("")
        if status.state is TunnelState.UP:
            await self._conclude(await self._run_once())  # the log, now that the key is in
        else:
            verdict.update(Text(f"✕ {status.last_error or status.state.value}"))
            self.finished.set()

    def _set_waiting(self, waiting: bool) -> None:
        self.waiting = waiting
        failed = self.step_log.failed
        if failed is not None:
            self.query_one("#verdict", Static).update(self._stopped_at(failed.step))
        self.refresh_bindings()

    async def _say_waiting(self, status: TunnelStatus) -> None:
        """The log's one line while the agent waits and no step has run here yet."""
        try:
            detail = await asyncio.to_thread(self.services.detail, self.connection_name)
            bastion = detail.connection.bastion.host
        except (TunnelTuiError, KeyError, OSError):
            bastion = "the bastion"
        until = f" until {local_clock(status.wait_until)}" if status.wait_until else ""
        self.step_log.note(
            f"The agent is waiting for the key on {bastion}{until}: it brings "
            f"{self.connection_name} up once the key is accepted, then the steps run here. "
            "You can close this."
        )

    async def _follow_wait(self, status: TunnelStatus, countdown: Static) -> TunnelStatus:
        """The agent's events for this tunnel until the wait ends; the countdown meanwhile."""
        events = self.services.events()
        upcoming = asyncio.ensure_future(anext(events))
        try:
            until = "?"
            while status.state not in (TunnelState.UP, TunnelState.FAILED, TunnelState.DOWN):
                if status.wait_until is not None:  # (not while it connects, once the key is in)
                    until = local_clock(status.wait_until)
                    countdown.update(
                        f"waiting for the key in the agent until {until} · "
                        f"{wait_left(status) or ''} · it brings {self.connection_name} up "
                        "by itself, also after you close the app"
                    )
                done, _ = await asyncio.wait({upcoming}, timeout=1.0)
                if not done:
                    continue
                event = upcoming.result()
                upcoming = asyncio.ensure_future(anext(events))
                if event.name == self.connection_name:
                    status = event
        finally:
            upcoming.cancel()
        return status

    # -- actions -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "wait":  # every step passed, or already waiting: nothing to do
            return self.succeeded is not True and not self.waiting
        return True

    def action_retry(self) -> None:
        self.waiting = False  # the run replaces this screen's wait (the agent's goes on)
        self.query_one("#countdown", Static).update("")
        self.run_validation()

    def action_wait(self) -> None:
        self.wait_for_key()

    def action_copy_report(self) -> None:
        lines = [f"tunnel-tui validate {self.connection_name}"]
        for r in self.step_log.results:
            lines.append(f"{r.status.value:<4} {r.step:<10} {r.elapsed_ms:7.0f} ms  {r.detail}")
            if r.hint:
                lines.append(f"     hint: {r.hint}")
        report = redact("\n".join(lines))
        self.app.copy_to_clipboard(report)
        if copy_reaches_clipboard():
            self.notify("Diagnostic report copied (secrets redacted).")
        else:
            self.notify("This terminal may not take copies from apps: select the steps "
                        "above to copy them.", title="Select the report to copy")

    @work(group="copy-key", thread=True)
    def action_copy_key(self) -> None:
        """The public key line to paste into authorized_keys (the usual fix)."""
        try:
            detail = self.services.detail(self.connection_name)
            if detail.key is None:
                return
            line = self.services.authorized_keys_line(detail.key, restricted=False)
        except (TunnelTuiError, KeyError, OSError):
            return
        self.app.call_from_thread(self.app.copy_to_clipboard, line)
        title = "Public key copied" if copy_reaches_clipboard() else "Select the line to copy"
        self.app.call_from_thread(self.notify, line, title=title)

    def action_close(self) -> None:
        self.workers.cancel_group(self, "validate")
        self.dismiss(bool(self.succeeded))
