"""ConnectionTable replaces two private DataTable methods (`_update_dimensions`,
`_update_column_widths`) so 1,000 rows are not measured cell by cell: with them,
scripts/cold_start.py paints 1,000 connections ~100-150 ms of CPU sooner.

Private methods change without notice. The first test fails when Textual's versions
of them (or the calls that make them ours) change: then re-read the new code, check
the override still does what the original does for one-line rows with fixed-width
columns and no row labels, and record the new fingerprints here. The second test
checks that behaviour itself: the table still scrolls over every row and column.
"""

from __future__ import annotations

import hashlib
import inspect

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tunnel_tui.core.model import Connection, Database, DbKind, SshEndpoint
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui.widgets.connection_table import ConnectionTable

# sha256 of inspect.getsource(DataTable.<name>), Textual 8.2.8.
REPLACED = {
    "_update_dimensions": "c62ef3216f7c354b",
    "_update_column_widths": "4f36354aa46fae6c",
}


def _fingerprint(name: str) -> str:
    return hashlib.sha256(inspect.getsource(getattr(DataTable, name)).encode()).hexdigest()[:16]


def test_the_replaced_datatable_methods_are_the_ones_the_overrides_were_written_for() -> None:
    import textual

    now = {name: _fingerprint(name) for name in REPLACED}
    changed = {name: value for name, value in now.items() if value != REPLACED[name]}
    assert not changed, (
        f"Textual {textual.__version__} changed DataTable{sorted(changed)}: review "
        f"ConnectionTable's overrides against the new code, then record {changed}"
    )
    source = inspect.getsource(DataTable)
    for name in REPLACED:  # still called, so overriding them still takes effect
        assert f"self.{name}(" in source, name
        assert inspect.signature(getattr(ConnectionTable, name)).parameters.keys() == (
            inspect.signature(getattr(DataTable, name)).parameters.keys()
        ), name


def _connections(count: int) -> list[Connection]:
    return [
        Connection(
            f"db-{i:04d}",
            Database(DbKind.POSTGRESQL, f"10.0.{i // 250}.{i % 250 + 1}", 5432, "app", "app"),
            SshEndpoint("bastion.example.com", "tunnel"),
            "k-test",
            local_port=20000 + i,
        )
        for i in range(count)
    ]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ConnectionTable()


async def test_the_table_still_scrolls_over_every_row_and_column() -> None:
    connections = _connections(300)
    statuses = {
        c.name: TunnelStatus(c.name, TunnelState.DOWN, "127.0.0.1", c.local_port,
                             "tunnel@bastion.example.com:22", c.database.target)
        for c in connections
    }
    app = TableApp()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ConnectionTable)
        table.set_data(connections, statuses)
        await pilot.pause()
        widths = sum(column.get_render_width(table) for column in table.columns.values())
        assert table.virtual_size.width == widths
        assert table.virtual_size.height == 300 + table.header_height
        table.move_cursor(row=299)
        await pilot.pause()
        assert table.selected_name == "db-0299"
        assert table.scroll_y == table.max_scroll_y > 0
