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



def test_hints_in_the_app_name_the_form_field() -> None:
    from tunnel_tui.core.steps import StepResult, StepStatus
    from tunnel_tui.probes.base import password_hint
    from tunnel_tui.ui.hints import for_the_app

    failed = StepResult("db-auth", StepStatus.FAIL, 3.0, "password rejected for user reader",
                        password_hint("reader", "analytics-pg", None))
    hint = for_the_app(failed).hint or ""
    assert "Password field" in hint and "--db-password-stdin" not in hint
    role = StepResult("db-auth", StepStatus.FAIL, 3.0, "role x does not exist",
                      "the role x does not exist: fix the user in the URL")
    assert for_the_app(role).hint == (
        "the role x does not exist: fix the form's User field (e on the list opens the form)")
    ok = StepResult("tcp", StepStatus.OK, 1.0, "fine")
    assert for_the_app(ok) is ok
