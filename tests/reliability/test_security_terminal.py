"""Finding 11 (issue 14): server text never reaches a terminal raw.

`validate` printed a database's error verbatim: a hostile PostgreSQL answering with
SQLSTATE XX000 set the window title (OSC 0) and wrote the clipboard (OSC 52). The
same holds for every string a server controls. One sanitizer
(`core.sanitize.terminal_text`) now escapes control characters at every renderer:
validate's log, error messages, `status`, and in the app the step log, the detail
pane, the table and toasts. Each path is driven by a fake server sending escapes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncssh

from tests.agent.test_agent_tunnels import cli, no_keyring_env
from tests.fixtures.pilot import main_screen, make_app, wait_for_stacked, wait_until
from tests.reliability.security_helpers import (
    HOSTILE,
    RAW_CONTROLS,
    HostilePostgres,
    HostileSsh,
    run_cli,
)
from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui.screens.validation import ValidationScreen
from tunnel_tui.ui.widgets.connection_table import ConnectionTable
from tunnel_tui.ui.widgets.detail_pane import describe
from tunnel_tui.ui.widgets.step_log import render_step

SHOWN = "\\x1b]52;c;dG91Y2ggL3RtcC9wd24K\\x07"  # what a person sees instead: visible text


class Forwarding(asyncssh.SSHServer):
    """A bastion that forwards to loopback (the hostile database behind it)."""

    def connection_requested(self, *args: object) -> bool:
        return True


class RefusingChannels(asyncssh.SSHServer):
    def connection_requested(self, *args: object) -> bool:
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, HOSTILE)


class Disconnecting(asyncssh.SSHServer):
    """Sends a banner, then disconnects with a hostile reason at auth."""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        self._conn.send_auth_banner(HOSTILE)
        self._conn.disconnect(asyncssh.DISC_BY_APPLICATION, HOSTILE)
        return True


def _clean(*texts: str) -> None:
    for text in texts:
        for raw in RAW_CONTROLS:
            assert raw not in text, f"raw {raw!r} reached the terminal: {text!r}"


def _trusted(server: HostileSsh) -> None:
    KnownHosts().add(server.host, server.port, " ".join(
        server.host_key.export_public_key().decode().split()[:2]))


def test_hostile_database_error_in_validate(secret_service):
    with HostilePostgres() as pg, HostileSsh(server_factory=Forwarding) as bastion:
        name = bastion.add_connection(db=f"postgresql://app@127.0.0.1:{pg.port}/app")
        _trusted(bastion)
        out = run_cli("validate", name)
    assert out.returncode == 1
    _clean(out.stdout, out.stderr)
    assert SHOWN in out.stdout, out.stdout  # shown, visibly escaped, not hidden


def test_hostile_channel_open_failure_in_validate(secret_service):
    with HostileSsh(server_factory=RefusingChannels) as bastion:
        name = bastion.add_connection()
        _trusted(bastion)
        out = run_cli("validate", name)
    assert out.returncode == 1 and "✕ channel" in out.stdout, out.stdout
    _clean(out.stdout, out.stderr)
    assert "\\x1b" in out.stdout


def test_hostile_disconnect_reason_in_validate_up_and_status(secret_service, agent_reaper):
    with HostileSsh(server_factory=Disconnecting) as bastion:
        name = bastion.add_connection()
        _trusted(bastion)
        out = run_cli("validate", name)
        assert out.returncode == 1
        _clean(out.stdout, out.stderr)
        assert "\\x1b" in out.stdout, out.stdout

        up = cli("up", name, "--timeout", "10")
        assert up.returncode == 1, up.stdout + up.stderr
        _clean(up.stdout, up.stderr)
        status = cli("status", env=no_keyring_env())
        _clean(status.stdout, status.stderr)
        assert "\\x1b" in status.stdout, status.stdout
        cli("down", name)


def test_the_sanitizer_keeps_text_and_escapes_controls():
    assert terminal_text("line one\n\tline two") == "line one\n\tline two"
    assert terminal_text("a\r\nb") == "a\nb"
    assert terminal_text(HOSTILE) == (
        "boom\\x1b]0;pwned title\\x07 \\x1b]52;c;dG91Y2ggL3RtcC9wd24K\\x07 "
        "\\x1b[2J\\x9b31m end"
    )
    assert terminal_text("\u202eevil") == "\\u202eevil"
    assert terminal_text("naïve — ok ✓") == "naïve — ok ✓"


async def test_hostile_text_in_the_app(secret_service):
    """Step log, detail pane, table cell and toast: what the app draws has no raw
    control character."""
    with HostilePostgres() as pg, HostileSsh(server_factory=Forwarding) as bastion:
        bastion.add_connection("evil", db=f"postgresql://app@127.0.0.1:{pg.port}/app")
        _trusted(bastion)
        app = make_app()
        async with app.run_test(size=(160, 40)) as pilot:  # wide: the LAST ERROR column
            screen = await main_screen(pilot)
            await pilot.press("v")
            validation = await wait_for_stacked(pilot, ValidationScreen, "validation")
            await wait_until(pilot, validation.finished.is_set, timeout=60, what="the run")
            failed = validation.step_log.failed
            assert failed is not None and "\x1b" in failed.detail  # the server's raw words
            for result in validation.step_log.results:
                head, body = render_step(result)
                _clean(head.plain, body.plain)
            assert SHOWN in render_step(failed)[1].plain

            hostile = TunnelStatus(name="evil", state=TunnelState.FAILED, local_host="127.0.0.1",
                                   local_port=None, bastion="b", target="t",
                                   last_error=HOSTILE, hint=HOSTILE)
            pane = describe(screen.services.detail("evil"), hostile, datetime.now(UTC))
            _clean(pane.plain)
            assert SHOWN in pane.plain
            table = screen.query_one(ConnectionTable)
            table.apply(hostile)
            cells = [str(cell) for cell in table._cells["evil"]]
            _clean(*cells)
            assert any("\\x1b" in cell for cell in cells), cells  # the error column

            app.notify(HOSTILE, title=HOSTILE, severity="error")
            for toast in list(app._notifications):
                _clean(toast.message, toast.title)
