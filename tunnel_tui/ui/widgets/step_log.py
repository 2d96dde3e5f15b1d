"""A live list of steps (validation or rotation): ✓/✕/· , elapsed time, detail, → hint.

Each step is one row updated in place; the step still running shows a spinner.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.steps import StepResult, StepStatus

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MARKS = {
    StepStatus.OK: ("✓", "$success"),
    StepStatus.FAIL: ("✕", "$error"),
    StepStatus.SKIP: ("·", "$text-muted"),
}


def render_step(result: StepResult, frame: int = 0) -> tuple[Content, Content]:
    """(mark, step and time; detail and → hint) — two columns, so wrapped text stays
    indented under the detail."""
    if result.status is StepStatus.RUNNING:
        mark, colour = SPINNER[frame % len(SPINNER)], "$accent"
        timing = "…"
    else:
        mark, colour = MARKS[result.status]
        timing = "skip" if result.status is StepStatus.SKIP else f"{result.elapsed_ms:.0f} ms"
    head = Content.from_markup(
        f"[{colour}]$mark[/] $step $timing", mark=mark, step=result.step.ljust(10),
        timing=timing.rjust(7),
    )
    body = Content(terminal_text(result.detail))  # server text: controls shown escaped
    if result.hint and result.status is StepStatus.FAIL:
        hint = Content.from_markup("[$accent]→ $hint[/]", hint=terminal_text(result.hint))
        body = Content("\n").join([body, hint])
    return head, body


class StepRow(Horizontal):
    def __init__(self, result: StepResult) -> None:
        super().__init__(classes=f"step -{result.status.value}")
        self.result = result
        self.pending = False
        self._frame = 0

    def compose(self) -> ComposeResult:
        head, body = render_step(self.result, self._frame)
        yield Static(head, classes="step-head")
        yield Static(body, classes="step-body")

    def on_mount(self) -> None:
        if self.result.status is StepStatus.RUNNING:
            self._timer = self.set_interval(0.1, self._spin)

    def _spin(self) -> None:
        self._frame += 1
        self._draw()

    def set_result(self, result: StepResult) -> None:
        self.result = result
        self.set_classes(f"step -{result.status.value}")
        if result.status is not StepStatus.RUNNING and hasattr(self, "_timer"):
            self._timer.stop()
        self._draw()

    def _draw(self) -> None:
        if len(self.children) < 2:
            return  # not composed yet: compose draws the current result
        head, body = render_step(self.result, self._frame)
        self.query_one(".step-head", Static).update(head)
        self.query_one(".step-body", Static).update(body)

    @property
    def text(self) -> str:
        """What the row says, as plain text (for tests and the copied report)."""
        head, body = render_step(self.result, self._frame)
        return f"{head.plain} {body.plain}"


class StepLog(VerticalScroll):
    """Rows keyed by step id; a repeated id (jump hosts) adds a row after the last one."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._rows: list[StepRow] = []
        self.results: list[StepResult] = []

    def clear_steps(self) -> None:
        self._rows = []
        self.results = []
        self.remove_children()

    def note(self, text: str) -> None:
        """A line that is not a step (what happens while no step runs); cleared with them."""
        self.mount(Static(Content(text), classes="step-note"))

    def show(self, result: StepResult) -> None:
        last = self._rows[-1] if self._rows else None
        if last is not None and last.result.step == result.step and (
            last.result.status is StepStatus.RUNNING
        ):
            last.pending = False
            last.set_result(result)
        elif last is not None and last.pending:
            last.pending = False
            last.set_result(result)
        else:
            row = StepRow(result)
            self._rows.append(row)
            self.mount(row)
        if result.status is not StepStatus.RUNNING:
            self.results.append(result)
        self.scroll_end(animate=False)

    def pending(self, step: str) -> None:
        """Show the spinner for the step we expect next, until its result arrives."""
        row = StepRow(StepResult(step, StepStatus.RUNNING))
        row.pending = True
        self._rows.append(row)
        self.mount(row)

    def drop_pending(self) -> None:
        if self._rows and self._rows[-1].pending:
            self._rows.pop().remove()

    @property
    def failed(self) -> StepResult | None:
        return next((r for r in self.results if r.status is StepStatus.FAIL), None)
