"""What used to differ between the CLI and the app now behaves the same, because both
call the same action: deleting cleans the bastion, renaming a live tunnel is refused,
bytes read the same. Real sshd, Secret Service and agent."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.widgets import Button, Checkbox, Static

from tests.fixtures.ui import FakeServices, sample_statuses
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.actions.connections import ConnectionInput
from tunnel_tui.commands.status_table import render_table
from tunnel_tui.core import formatting
from tunnel_tui.core.config import load
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.screens.confirm import ConfirmScreen
from tunnel_tui.ui.screens.connections import ConnectionsScreen
from tunnel_tui.ui.services import RealServices
from tunnel_tui.ui.widgets.connection_table import ConnectionTable


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def trust(server: Any) -> None:
    KnownHosts().add(server.host, server.port, server.host_public_key)


async def test_delete_in_the_app_takes_the_key_line_off_the_bastion_like_remove(
    secret_service: Any, sshd_factory: Any, add_tunnel_connection: Any
) -> None:
    server = sshd_factory()
    server.authorize("# ops: keep this comment")
    in_app = add_tunnel_connection("in-app", bastion=server)
    add_tunnel_connection("in-cli", bastion=server, local_port=15433)
    trust(server)
    assert in_app.key.public_key.split()[1] in server.authorized_keys_path.read_text()

    app = TunnelTuiApp(RealServices(), refresh_seconds=0.3)
    async with app.run_test(size=(120, 40)) as pilot:

        async def until(check: Any, what: str) -> None:
            await wait_until_async(check, 30, what, interval=0.05, sleep=pilot.pause)

        await until(lambda: isinstance(app.screen, ConnectionsScreen), "the list")
        screen = app.screen
        assert isinstance(screen, ConnectionsScreen)
        await until(screen.loaded.is_set, "connections loaded")
        table = screen.query_one(ConnectionTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("in-app"))
        await pilot.press("delete")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the question")
        option = app.screen.query_one("#confirm-option", Checkbox)
        where = f"~{server.user}/.ssh/authorized_keys on {server.host}:{server.port}"
        text = str(app.screen.query_one(".dialog-text", Static).render())
        assert option.value and "line from the bastion" in str(option.label)
        assert where in " ".join(text.split()), text  # the dialog says where the line is
        app.screen.query_one("#confirm", Button).press()
        await until(lambda: "in-app" not in load().connections, "the connection removed")
        await until(
            lambda: in_app.key.public_key.split()[1] not in server.authorized_keys_path.read_text(),
            "the key's line removed from the bastion",
        )
        await pilot.app.workers.wait_for_complete()

    removed = cli("remove", "in-cli", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert f"Removed its line from {where}." in removed.stdout
    # Both ways leave the same bastion file: only the other lines.
    assert server.authorized_keys_path.read_text().splitlines() == ["# ops: keep this comment"]
    assert load().connections == {} and load().keys == {}


def test_a_live_tunnel_is_not_renamed_from_the_cli_nor_the_app(
    secret_service: Any, sshd: Any, add_tunnel_connection: Any, agent_process: Any
) -> None:
    setup = add_tunnel_connection("held", bastion=sshd)
    trust(sshd)
    up = cli("up", "held")
    assert up.returncode == 0, up.stderr

    refused = cli("edit", "held", "--rename", "moved")
    assert refused.returncode == 2
    assert "cannot rename held while its tunnel is up in the agent" in refused.stderr
    assert "tunnel-tui down held" in refused.stderr

    conn = setup.connection
    form = ConnectionInput("moved", conn.database, conn.bastion)
    with pytest.raises(UsageError) as caught:
        RealServices().save(form, original_name="held")
    assert caught.value.field == "name"  # the form shows it under the name field
    assert caught.value.message in refused.stderr
    assert list(load().connections) == ["held"]

    # Down, the same rename goes through from the app.
    assert cli("down", "held").returncode == 0
    saved = RealServices().save(form, original_name="held")
    assert saved.renamed_from == "held" and list(load().connections) == ["moved"]


async def test_bytes_read_the_same_in_status_and_in_the_app() -> None:
    statuses = sample_statuses()
    status = replace(statuses["analytics-pg"], bytes_in=1_500_000, bytes_out=88_000)
    statuses["analytics-pg"] = status
    expected = formatting.human_bytes(1_500_000)
    assert expected == "1.5 MB"

    printed = render_table([status], running=True, now=datetime.now(UTC))
    row = next(line for line in printed.splitlines() if line.startswith("analytics-pg"))
    assert f"{expected}/88 kB" in row

    app = TunnelTuiApp(FakeServices(statuses=statuses), refresh_seconds=60)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until_async(
            lambda: isinstance(app.screen, ConnectionsScreen) and app.screen.loaded.is_set(),
            10, "the list", interval=0.05, sleep=pilot.pause,
        )
        cell = str(app.screen.query_one(ConnectionTable).get_cell("analytics-pg", "traffic"))
    assert cell == f"{expected} / 88 kB"
