"""Under the detail pane: the selected live tunnel's last 10 minutes as sparklines
(bytes in, bytes out, channels; one sample a second, from the agent's history) and
its reconnects. Hidden while the tunnel is not live."""

from __future__ import annotations

from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from tunnel_tui.core import formatting
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.history import TunnelHistory
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui.services import Services

LIVE = (TunnelState.UP, TunnelState.RECONNECTING, TunnelState.CONNECTING)
SHOWN_RECONNECTS = 3


def reconnect_text(history: TunnelHistory) -> str:
    """The last few reconnects, newest first: "08:14 keepalive timeout (down 4s)"."""
    if not history.reconnects:
        return "no reconnects in the last 10 minutes"
    parts = []
    for item in reversed(history.reconnects[-SHOWN_RECONNECTS:]):
        try:
            when = formatting.local_clock(datetime.fromisoformat(item.time))
        except ValueError:
            when = "?"
        down = "under 1s" if item.downtime is None else formatting.duration(item.downtime)
        parts.append(f"{when} {item.cause} (down {down})")
    more = len(history.reconnects) - SHOWN_RECONNECTS
    return " · ".join(parts) + (f" · {more} more" if more > 0 else "")


class TrafficPane(Vertical):
    DEFAULT_CSS = """
    TrafficPane { height: auto; padding: 0 1; }
    TrafficPane Horizontal { height: 1; }
    TrafficPane .traffic-name { width: 5; color: $text-muted; }
    TrafficPane Sparkline { width: 1fr; height: 1; margin: 0 1 0 0; }
    TrafficPane .traffic-now { width: 11; text-align: right; }
    TrafficPane #traffic-reconnects {
        color: $text-muted; height: 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self, services: Services, *, widget_id: str | None = None) -> None:
        super().__init__(id=widget_id)
        self.services = services
        self.history: TunnelHistory | None = None

    def compose(self) -> ComposeResult:
        for key, title in (("in", "in"), ("out", "out"), ("channels", "ch")):
            with Horizontal():
                yield Label(title, classes="traffic-name")
                yield Sparkline([], summary_function=max, id=f"traffic-{key}")
                yield Label("", classes="traffic-now", id=f"traffic-{key}-now")
        yield Static("", id="traffic-reconnects")

    def on_mount(self) -> None:
        self.display = False

    @work(exclusive=True, group="traffic")
    async def follow(self, name: str | None, status: TunnelStatus | None) -> None:
        """Fetch NAME's history from the agent and draw it (hidden when not live)."""
        history = None
        if name is not None and status is not None and status.state in LIVE:
            try:
                history = await self.services.history(name)
            except (TunnelTuiError, OSError):
                history = None
        # Not while the screen is torn down (quitting while the agent answered): its
        # children go first, and a query for them would fail the app's exit.
        if self.is_attached and self.query(Sparkline):
            self.show(history)

    def show(self, history: TunnelHistory | None) -> None:
        self.history = history
        self.display = history is not None
        if history is None:
            return
        rows = (("in", history.bytes_in, True), ("out", history.bytes_out, True),
                ("channels", history.channels, False))
        for key, values, is_bytes in rows:
            self.query_one(f"#traffic-{key}", Sparkline).data = list(values) or [0]
            last = values[-1] if values else 0
            now = f"{formatting.human_bytes(last)}/s" if is_bytes else str(last)
            self.query_one(f"#traffic-{key}-now", Label).update(now)
        self.query_one("#traffic-reconnects", Static).update(
            f"reconnects  {reconnect_text(history)}")
