"""How facts read on screen: state colours and words, column layout (sizes, durations
and client commands: tests/core/test_formatting.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui import display
from tunnel_tui.ui.widgets.connection_table import layout_for


def test_state_is_a_symbol_and_a_word_with_a_short_reason() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    failed = TunnelStatus("x", TunnelState.FAILED, "127.0.0.1", None, "u@b:22", "db:5432",
                          since=now, last_error="auth: publickey rejected by bastion")
    text = display.state_text(failed, {"error": "red"})
    assert text.plain == "✕ failed: auth"
    up = TunnelStatus("x", TunnelState.UP, "127.0.0.1", 5000, "u@b:22", "db:5432",
                      since=now - timedelta(minutes=5))
    assert display.state_text(up, {}).plain == "● up"
    assert display.uptime(up, now) == "5m"
    assert display.local_address(up) == "127.0.0.1:5000"


def test_narrow_terminals_drop_columns_from_the_right() -> None:
    wide = [c.key for c in layout_for(138)]
    medium = [c.key for c in layout_for(110)]
    narrow = layout_for(78)
    assert wide == ["name", "state", "target", "local", "traffic", "uptime", "error"]
    assert medium == ["name", "state", "target", "local", "traffic", "uptime"]
    assert [c.key for c in narrow] == ["name", "state", "target", "local"]
    assert sum(c.width + 2 for c in narrow) <= 78

