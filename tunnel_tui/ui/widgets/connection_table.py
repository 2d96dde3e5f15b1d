"""The connection list: one row per connection, cells updated in place.

Columns have fixed widths chosen from the terminal width, so a live update never
re-measures the table (no flicker, constant cost with 1,000 rows). Narrow
terminals drop columns from the right and shorten TARGET.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, CellKey, RowDoesNotExist, RowKey

from tunnel_tui.core.formatting import state_label_width, wait_left
from tunnel_tui.core.model import Connection
from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui import display


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    label: str
    width: int


STATE_WIDTH = state_label_width()  # "✕ failed: host key"
SHORT_KINDS = {"postgresql": "pg", "clickhouse": "ch", "vertica": "vt"}


def layout_for(width: int) -> list[ColumnSpec]:
    """Columns for a table whose content area is `width` cells wide."""
    usable = width - 1  # the vertical scrollbar, when there are many rows
    name, state, local = (16, STATE_WIDTH, 15) if width >= 96 else (14, STATE_WIDTH, 15)
    columns = [ColumnSpec("name", "NAME", name), ColumnSpec("state", "STATE", state)]
    extra: list[ColumnSpec] = [ColumnSpec("local", "LOCAL", local)]
    if width >= 96:
        extra += [ColumnSpec("traffic", "IN / OUT", 15), ColumnSpec("uptime", "UP", 6)]
    fixed = sum(c.width + 2 for c in columns + extra)  # 2: cell padding
    target = max(min(usable - fixed - 2, 46), 18)
    if width >= 130:
        target = 36  # room for LAST ERROR, the widest terminals only
    columns.append(ColumnSpec("target", "TARGET (via bastion)", target))
    columns += extra
    rest = usable - sum(c.width + 2 for c in columns) - 2
    if width >= 126 and rest >= 12:
        columns.append(ColumnSpec("error", "LAST ERROR", rest))
    return columns


class ConnectionTable(DataTable[object]):
    """Statuses in, cells out. The screen owns the data; this widget only draws it."""

    DEFAULT_CSS = ""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._columns: list[ColumnSpec] = []
        self._connections: dict[str, Connection] = {}
        self._statuses: dict[str, TunnelStatus] = {}
        self._shown: list[str] = []
        self._filter = ""
        self._theme: dict[str, str] = {}
        # Cells per row, kept across filter keystrokes (a rebuild re-adds, not recomputes).
        self._cells: dict[str, tuple[object, ...]] = {}
        self._cells_layout: tuple[ColumnSpec, ...] = ()
        self._now: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- data ----------------------------------------------------------------------
    def set_clock(self, now: Callable[[], datetime]) -> None:
        """Tests and screenshots freeze time so uptimes are deterministic."""
        self._now = now

    def set_data(
        self, connections: Iterable[Connection], statuses: Mapping[str, TunnelStatus]
    ) -> None:
        self._cells.clear()
        self._connections = {c.name: c for c in connections}
        self._statuses = dict(statuses)
        self._rebuild()

    def set_filter(self, text: str) -> None:
        self._filter = text.strip().lower()
        self._rebuild()

    @property
    def selected_name(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= len(self._shown):
            return None
        return self._shown[self.cursor_row]

    def status_of(self, name: str) -> TunnelStatus | None:
        return self._statuses.get(name)

    def apply(self, status: TunnelStatus) -> None:
        """One live event: update that row's cells in place."""
        name = status.name
        self._statuses[name] = status
        old = self._cells.pop(name, None)
        if name not in self._shown:
            return
        new = self._cells[name] = tuple(self._cell(c, name) for c in self._columns)
        for index, column in enumerate(self._columns):
            if old is not None and len(old) == len(new) and old[index] == new[index]:
                continue  # unchanged cells are not redrawn
            try:
                self.update_cell(name, column.key, new[index])
            except (CellDoesNotExist, RowDoesNotExist):
                self._cells.pop(name, None)
                return

    def tick(self) -> None:
        """Uptimes advance once a second; only rows that are up change (and the time
        left of a wait for a key)."""
        for name in self._shown:
            status = self._statuses.get(name)
            if status is not None and status.wait_until is not None:
                column = next(c for c in self._columns if c.key == "local")
                self._cells.pop(name, None)
                self.update_cell(name, "local", self._cell(column, name))
        if not any(c.key == "uptime" for c in self._columns):
            return
        for name in self._shown:
            status = self._statuses.get(name)
            if status is not None and status.state is TunnelState.UP:
                column = next(c for c in self._columns if c.key == "uptime")
                self._cells.pop(name, None)
                self.update_cell(name, "uptime", self._cell(column, name))

    def refresh_theme(self) -> None:
        self._cells.clear()
        self._rebuild()

    # -- measuring ----------------------------------------------------------------
    # Textual measures every new or updated cell to size auto-width columns, even when a
    # column has a fixed width: 7,000 cells for 1,000 connections. Our widths are fixed
    # and rows are one line, so the virtual size is known without measuring anything.
    # Worth ~100-150 ms of CPU at first paint with 1,000 rows (scripts/cold_start.py);
    # tests/ui/test_connection_table_overrides.py fails when Textual changes these methods.
    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        header_height = self.header_height if self.show_header else 0
        width = sum(column.get_render_width(self) for column in self.columns.values())
        self.virtual_size = Size(width, self._total_row_height + header_height)

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        return None

    # -- layout --------------------------------------------------------------------
    def _width(self) -> int:
        """Width inside the border, whether or not the scrollbar shows (so its
        appearance with many rows does not trigger a second layout)."""
        return max(self.outer_size.width - 2, 0) or max(self.app.size.width - 2, 0)

    def on_resize(self) -> None:
        columns = layout_for(self._width())
        if columns != self._columns:
            self._rebuild(columns)

    def _rebuild(self, columns: list[ColumnSpec] | None = None) -> None:
        selected = self.selected_name
        if columns is not None or not self._columns:
            self._columns = columns or layout_for(self._width())
        self._theme = dict(self.app.theme_variables)
        self.clear(columns=True)
        for column in self._columns:
            self.add_column(column.label, width=column.width, key=column.key)
        self._shown = [name for name in self._connections if self._matches(name)]
        layout = tuple(self._columns)
        if layout != self._cells_layout:
            self._cells.clear()  # new columns or theme: every row's cells change
            self._cells_layout = layout
        for name in self._shown:
            cells = self._cells.get(name)
            if cells is None:
                cells = self._cells[name] = tuple(self._cell(c, name) for c in self._columns)
            self.add_row(*cells, key=name)
        if selected in self._shown:
            self.move_cursor(row=self._shown.index(selected), animate=False)

    def _matches(self, name: str) -> bool:
        if not self._filter:
            return True
        conn = self._connections[name]
        haystack = f"{name} {conn.database.kind} {conn.database.target} {conn.bastion.host}"
        return self._filter in haystack.lower()

    def _cell(self, column: ColumnSpec, name: str) -> object:
        # Plain strings where the text is ours or validated (names, hosts, numbers): the
        # table renders them lazily, only for visible rows. Rich Text where it is free-form
        # (errors: no markup interpretation) or coloured (state).
        conn = self._connections[name]
        status = self._statuses.get(name)
        key = column.key
        if key == "name":
            return display.ellipsize(name, column.width)
        if key == "target":
            if column.width >= 34:
                kind = f"{conn.database.kind.value:<10}"
            else:
                kind = SHORT_KINDS.get(conn.database.kind.value, conn.database.kind.value)
            text = f"{kind} {conn.database.target}  {display.short_host(conn.bastion.host)}"
            return display.ellipsize(text, column.width).replace("[", r"\[")
        if status is None:
            return "…"
        if key == "state":
            return display.state_text(status, self._theme)
        if key == "local":
            left = wait_left(status, self._now())
            return f"· {left}" if left else display.local_address(status)
        if key == "traffic":
            return display.traffic(status)
        if key == "uptime":
            return display.uptime(status, self._now())
        if key == "error":
            error = terminal_text(status.last_error or "")  # server text: controls escaped
            return Text(display.ellipsize(error, column.width), no_wrap=True)
        return ""
