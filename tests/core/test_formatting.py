"""The one formatting of bytes, durations, states and client commands (CLI and app)."""

from __future__ import annotations

import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tunnel_tui.core import formatting
from tunnel_tui.core.status import TunnelState, TunnelStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _status(state: TunnelState, **kw: object) -> TunnelStatus:
    return TunnelStatus("x", state, "127.0.0.1", 5000, "u@b:22", "db:5432", **kw)  # type: ignore[arg-type]


def test_bytes_are_decimal_and_short() -> None:
    assert formatting.human_bytes(0) == "0 B"
    assert formatting.human_bytes(999) == "999 B"
    assert formatting.human_bytes(1_000) == "1.0 kB"
    assert formatting.human_bytes(88_000) == "88 kB"
    assert formatting.human_bytes(1_234_000) == "1.2 MB"
    assert formatting.human_bytes(1_500_000) == "1.5 MB"
    assert formatting.human_bytes(999_600) == "1.0 MB"
    assert formatting.human_bytes(42 * 10**12) == "42 TB"
    for count in (0, 9_949, 9_951, 999_499, 10**9 - 1, 10**12 - 1):
        assert len(formatting.human_bytes(count)) <= 6


def test_traffic_only_once_something_moved_or_up() -> None:
    assert formatting.traffic(_status(TunnelState.DOWN)) == "—"
    assert formatting.traffic(_status(TunnelState.FAILED), empty="-") == "-"
    assert formatting.traffic(_status(TunnelState.UP)) == "0 B / 0 B"
    moved = _status(TunnelState.RECONNECTING, bytes_in=1_500_000, bytes_out=88_000)
    assert formatting.traffic(moved, separator="/") == "1.5 MB/88 kB"


def test_compact_durations() -> None:
    assert formatting.duration(5) == "5s"
    assert formatting.duration(-3) == "0s"
    assert formatting.duration(13 * 60 + 5) == "13m"
    assert formatting.duration(2 * 3600 + 13 * 60) == "2h13m"
    assert formatting.duration(3 * 86400 + 7200) == "3d2h"
    up = _status(TunnelState.UP, since=NOW - timedelta(minutes=5))
    assert formatting.uptime(up, NOW) == "5m"
    assert formatting.uptime(_status(TunnelState.DOWN, since=NOW), NOW, empty="-") == "-"


def test_durations_in_words() -> None:
    assert formatting.duration_words(0.4) == "0 s"
    assert formatting.duration_words(45) == "45 s"
    assert formatting.duration_words(125) == "2 min 05 s"
    assert formatting.duration_words(3570) == "59 min 30 s"
    assert formatting.duration_words(3600) == "1 h"
    assert formatting.duration_words(5400) == "1 h 30 min"
    assert formatting.duration_words(7199) == "2 h"


def test_states_are_a_symbol_and_a_word() -> None:
    failed = _status(TunnelState.FAILED, last_error="auth: publickey rejected by bastion")
    assert formatting.state_label(failed) == "✕ failed: auth"
    assert formatting.state_label(_status(TunnelState.UP)) == "● up"
    assert formatting.state_symbol("waiting-for-key") == "◌"
    assert formatting.state_symbol("some-new-state") == "◌"


def test_client_commands_never_carry_a_password() -> None:
    assert formatting.client_command("postgresql", "reader", "analytics", "127.0.0.1", 54321) == (
        "psql postgresql://reader@127.0.0.1:54321/analytics"
    )
    assert formatting.client_command("mysql", "app", "billing", "127.0.0.1", 33061) == (
        "mysql -h 127.0.0.1 -P 33061 -u app billing"
    )
    assert formatting.client_command("clickhouse", "d", "e", "127.0.0.1", 8123) == (
        "http://127.0.0.1:8123"
    )


HOSTILE = ['x"$(touch pwn)"', "a'; touch pwn; '", "`touch pwn`", "$(touch pwn)", "-e touch"]


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "vertica", "trino"])
@pytest.mark.parametrize("name", HOSTILE)
def test_a_pasted_command_with_hostile_names_runs_nothing_else(
    kind: str, name: str, tmp_path: Path
) -> None:
    command = formatting.client_command(kind, name, name, "127.0.0.1", 5432)
    program = shlex.split(command)[0]
    # The client is a shell function that prints its arguments: what a paste would run.
    script = f'{program}() {{ printf "%s\\n" "$@"; }}\n{command}\n'
    out = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=10
    )
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "pwn").exists()
    args = out.stdout.splitlines()
    assert args == shlex.split(command)[1:]
    if kind == "postgresql":
        from urllib.parse import unquote, urlsplit

        url = urlsplit(args[0])
        assert unquote(url.username or "") == name
        assert unquote(url.path[1:]) == name
    else:
        assert name in args or f"--database={name}" in args
    if name.startswith("-") and kind == "mysql":
        # A database named like an option is passed as a value, never as an option.
        assert args[-1] == f"--database={name}"
    if name.startswith("-") and kind == "vertica":
        assert args[-2:] == ["-d", name]


def test_key_age_reads_naturally() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert formatting.age_words(now - timedelta(hours=3), now) == "today"
    assert formatting.age_words(now - timedelta(days=1, hours=1), now) == "yesterday"
    assert formatting.age_words(now - timedelta(days=41), now) == "41 days ago"


def test_failed_state_names_its_kind() -> None:
    refused = _status(TunnelState.FAILED, last_error="bastion t@b:22: cannot connect: "
                      "connection refused")
    assert formatting.state_word(refused) == "failed: refused"
    assert formatting.state_word(_status(TunnelState.FAILED, last_error="odd")) == "failed"
