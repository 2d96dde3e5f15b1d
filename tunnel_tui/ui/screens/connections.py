"""The main screen: every connection, its live state, and what to do with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.failure_kind import failed_word
from tunnel_tui.core.model import Connection
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui import display
from tunnel_tui.ui.clipboard import copy_reaches_clipboard
from tunnel_tui.ui.messages import OpenSandbox, ShowKeys, StartRotation, StartValidation
from tunnel_tui.ui.services import ConnectionDetail, Services
from tunnel_tui.ui.vault_gate import needs_vault, unlock_or_report, unlock_then
from tunnel_tui.ui.widgets.connection_table import ConnectionTable
from tunnel_tui.ui.widgets.detail_pane import DetailPane
from tunnel_tui.ui.widgets.footer import FooterYieldsToDialogs, WrappingFooter
from tunnel_tui.ui.widgets.top_bar import TopBar
from tunnel_tui.ui.widgets.traffic_pane import TrafficPane

EMPTY_TEXT = "No connections yet. Press [b]a[/b] to add one, or [b]s[/b] to try the sandbox."


class ConnectionsScreen(FooterYieldsToDialogs, Screen[None]):
    BINDINGS = [
        Binding("a", "add", "Add", id="connection.add"),
        Binding("e", "edit", "Edit", id="connection.edit"),
        Binding("enter", "toggle_tunnel", "Up/Down", id="connection.toggle", priority=True),
        Binding("v", "validate", "Validate", id="connection.validate"),
        Binding("k", "keys", "Keys", id="app.keys"),
        Binding("r", "rotate", "Rotate", id="connection.rotate"),
        Binding("c", "copy", "Copy", id="connection.copy"),
        Binding("o", "open_client", "Client", id="connection.open_client"),
        Binding("slash", "filter", "Filter", id="connection.filter"),
        Binding("delete", "delete", "Delete", id="connection.delete"),
        Binding("s", "sandbox", "Sandbox", id="app.sandbox"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="connection.unfilter"),
    ]

    def __init__(
        self,
        services: Services,
        *,
        refresh_seconds: float = 2.0,
        clock: Callable[[], datetime] | None = None,
        sandbox_offer: bool = True,
        title: str = "tunnel-tui",
        in_sandbox: bool = False,
    ) -> None:
        super().__init__()
        self.services = services
        self.refresh_seconds = refresh_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sandbox_offer = sandbox_offer
        self.in_sandbox = in_sandbox  # the forms say so: a throwaway home
        self._select_after_load: str | None = None
        self.title_text = title
        self._connections: dict[str, Connection] = {}
        self._pending: dict[str, TunnelStatus] = {}
        self._details: dict[str, ConnectionDetail] = {}
        self._events_alive = False
        self._events_task: asyncio.Task[None] | None = None
        self._filter_timer: Timer | None = None
        self.loaded = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield TopBar(self.title_text, id="top-bar")
        with Vertical(id="list-area"):
            table = ConnectionTable(id="connections")
            table.set_clock(self.clock)
            table.border_title = "Connections"
            yield table
            yield Static(EMPTY_TEXT, id="empty-state")
        yield Input(placeholder="filter by name, kind, host…  (enter: list, esc: clear)",
                    id="filter", compact=True)
        yield DetailPane(id="detail")
        yield TrafficPane(self.services, widget_id="traffic")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one("#empty-state").display = False
        self.reload()
        self.check_secrets()
        self.set_interval(0.2, self._flush)
        self.set_interval(1.0, self._tick)
        self.set_interval(self.refresh_seconds, self._fallback_refresh)
        # After the new theme's variables are in place (a watch on `theme` runs before,
        # and the state colours would stay the old theme's).
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    # -- data in -------------------------------------------------------------------
    @property
    def connection_names(self) -> list[str]:
        return list(self._connections)

    @property
    def table(self) -> ConnectionTable:
        return self.query_one(ConnectionTable)

    @work(exclusive=True, group="load")
    async def reload(self) -> None:
        try:
            statuses = await self.services.statuses()
            connections = await asyncio.to_thread(self.services.connections)
        except TunnelTuiError as exc:
            # A broken config must not take the app down: say what is wrong and how to fix.
            if self._alive():
                self.query_one("#empty-state", Static).update(exc.render())
                self.query_one("#empty-state").display = True
                self.table.display = False
                self.notify(exc.hint or "", title=exc.message, severity="error")
            self.loaded.set()
            return
        if not self._alive():
            return
        self._connections = {c.name: c for c in connections}
        self._details.clear()
        by_name = {s.name: s for s in statuses}
        self.table.set_data(connections, by_name)
        if self._select_after_load in self._connections:
            self.select(self._select_after_load)
        self._select_after_load = None
        empty = not connections
        self.query_one("#empty-state").display = empty
        self.table.display = not empty
        self.query_one(DetailPane).display = not empty
        self.refresh_bindings()
        self._update_counts()
        running = await self.services.agent_running()
        if not self._alive():
            return
        self.query_one(TopBar).agent = "running" if running else "stopped"
        self.show_detail()
        self.loaded.set()
        if not self._events_alive:
            self.follow_events()

    def follow_events(self) -> None:
        # A subscription, not a job: a plain task, so `workers.wait_for_complete()`
        # (tests, screenshots) does not wait for a stream that never ends.
        if self._events_task is None or self._events_task.done():
            self._events_alive = True
            self._events_task = asyncio.create_task(self._follow_events())

    def on_unmount(self) -> None:
        if self._events_task is not None:
            self._events_task.cancel()

    async def _follow_events(self) -> None:
        """Coalesce the agent's event stream: the newest status per name wins."""
        self._events_alive = True
        try:
            async for status in self.services.events():
                self._pending[status.name] = status
        except (TunnelTuiError, OSError):
            pass  # no agent (yet): the timer refresh keeps the list current
        finally:
            self._events_alive = False

    @work(exclusive=True, group="secrets", thread=True)
    def check_secrets(self) -> None:
        try:
            state = self.services.secrets_state()
        except (TunnelTuiError, OSError) as exc:
            self.app.call_from_thread(self._set_secrets, "unavailable", str(exc))
            return
        self.app.call_from_thread(self._set_secrets, state.label, state.reason)
        # Ask for the vault passphrase only when there is something in it; a first start
        # shows the empty list (and the sandbox offer), and saving asks when needed.
        if not state.usable and state.backend == "vault" and self._has_connections():
            self.app.call_from_thread(self._ask_vault)

    def _has_connections(self) -> bool:
        try:
            return bool(self.services.connections())
        except (TunnelTuiError, OSError):
            return False

    def _set_secrets(self, label: str, reason: str) -> None:
        if not self._alive():
            return
        bar = self.query_one(TopBar)
        bar.secrets = label
        bar.tooltip = reason or None
        # Why secrets go to the vault (not the OS keyring) is the top bar's tooltip: at
        # most one toast at start-up, and that is the sandbox's greeting.

    def _ask_vault(self) -> None:
        from tunnel_tui.ui.screens.vault import VaultScreen

        def done(unlocked: bool | None) -> None:
            if unlocked:
                self.check_secrets()

        self.app.push_screen(VaultScreen(self.services), done)

    def _alive(self) -> bool:
        """False once the screen is being torn down (workers finish after an await)."""
        return self.is_attached and bool(self.query(ConnectionTable))

    def _flush(self) -> None:
        if not self._pending or not self._alive():
            return
        pending, self._pending = self._pending, {}
        for status in pending.values():
            if status.name in self._connections:
                before = self.table.status_of(status.name)
                if status.state is TunnelState.FAILED and (
                    before is None or before.state is not TunnelState.FAILED
                ):
                    self.app.bell()  # a tunnel just failed: the row says why
                elif (
                    status.state is TunnelState.UP
                    and before is not None
                    and before.state is TunnelState.WAITING_FOR_KEY
                ):
                    self.app.bell()  # the key landed: the agent brought it up
                    self.notify(f"{status.name} is up: the bastion accepted the key")
                self.table.apply(status)
        self._update_counts()
        self.show_detail()

    def _tick(self) -> None:
        self.table.tick()
        self._follow_traffic()

    def _follow_traffic(self) -> None:
        name = self.table.selected_name
        self.query_one(TrafficPane).follow(name, self.table.status_of(name) if name else None)

    def _fallback_refresh(self) -> None:
        if not self._events_alive:
            self.refresh_statuses()

    @work(exclusive=True, group="refresh")
    async def refresh_statuses(self) -> None:
        try:
            statuses = await self.services.statuses()
        except TunnelTuiError:
            return  # reload() shows the problem; the next tick tries again
        if not self._alive():
            return
        names = {s.name for s in statuses}
        if names != set(self._connections):
            self.reload()
            return
        for status in statuses:
            if status != self.table.status_of(status.name):
                self._pending[status.name] = status
        running = await self.services.agent_running()
        if not self._alive():
            return
        self.query_one(TopBar).agent = "running" if running else "stopped"
        if not self._events_alive and self.query_one(TopBar).agent == "running":
            self.follow_events()

    def _update_counts(self) -> None:
        bar = self.query_one(TopBar)
        statuses = [self.table.status_of(n) for n in self._connections]
        bar.up_count = sum(1 for s in statuses if s and s.state is TunnelState.UP)
        bar.total = len(self._connections)

    def on_screen_resume(self) -> None:
        # Back from a key rotation, the keys screen or an edit: details may have changed.
        if self.loaded.is_set():
            self._details.clear()
            self.reload()

    def _theme_changed(self, theme: object = None) -> None:
        self.table.refresh_theme()

    # -- detail pane ---------------------------------------------------------------
    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self.show_detail()
        self._follow_traffic()

    def show_detail(self) -> None:
        if not self._alive():
            return
        name = self.table.selected_name
        pane = self.query_one(DetailPane)
        if name is None:
            pane.show(None, None)
            return
        detail = self._details.get(name)
        if detail is None:
            self.load_detail(name)
            return
        pane.show(detail, self.table.status_of(name), self.clock())

    @work(exclusive=True, group="detail", thread=True)
    def load_detail(self, name: str) -> None:
        try:
            detail = self.services.detail(name)
        except (TunnelTuiError, OSError):
            return
        self._details[name] = detail
        self.app.call_from_thread(self.show_detail)

    # -- actions -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        has_rows = bool(self._connections)
        if action == "toggle_tunnel" and not isinstance(self.focused, ConnectionTable):
            return False  # enter belongs to the filter box or a dialog button
        if action == "sandbox":
            return (not has_rows) and self.sandbox_offer
        if action in {"edit", "toggle_tunnel", "validate", "rotate", "copy", "delete", "filter",
                      "open_client"}:
            return has_rows if action == "filter" else (self.table.selected_name is not None)
        return True

    def action_add(self) -> None:
        from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen

        self.app.push_screen(TunnelFormScreen(self.services, sandbox=self.in_sandbox),
                             self._form_done)

    def action_edit(self) -> None:
        from tunnel_tui.ui.screens.tunnel_form import TunnelFormScreen

        name = self.table.selected_name
        if name is None:
            return
        self.app.push_screen(
            TunnelFormScreen(self.services, editing=self._connections[name],
                             sandbox=self.in_sandbox),
            self._form_done,
        )

    def _form_done(self, outcome: object) -> None:
        from tunnel_tui.ui.screens.public_key import PublicKeyScreen
        from tunnel_tui.ui.screens.tunnel_form import FormOutcome

        self._details.clear()
        if isinstance(outcome, FormOutcome):
            self._select_after_load = outcome.saved.connection.name  # the cursor goes there
        self.reload()
        self.check_secrets()  # saving may have unlocked (or created) the vault
        if not isinstance(outcome, FormOutcome):
            return
        name = outcome.saved.connection.name
        if outcome.saved.generated:

            def next_step(choice: str | None) -> None:
                if choice in ("validate", "wait"):
                    self.post_message(StartValidation(name, wait_for_key=choice == "wait"))

            self.app.push_screen(
                PublicKeyScreen(
                    self.services,
                    outcome.saved.key,
                    outcome.saved.connection.bastion,
                    offer_validate=True,
                ),
                next_step,
            )
        elif outcome.then == "validate":
            self.post_message(StartValidation(name))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_toggle_tunnel()

    def action_toggle_tunnel(self) -> None:
        name = self.table.selected_name
        if name is None:
            return
        status = self.table.status_of(name)
        going_up = status is None or status.state in (TunnelState.DOWN, TunnelState.FAILED)
        self.toggle_tunnel(name, going_up)

    @work(group="toggle")
    async def toggle_tunnel(self, name: str, going_up: bool) -> None:
        current = self.table.status_of(name)
        if current is not None and going_up:
            self.table.apply(_with_state(current, TunnelState.CONNECTING))
        try:
            if going_up:
                status = await self.services.up(name)
                self._pending[name] = status
            else:
                await self.services.down(name)
                if current is not None:
                    self._pending[name] = _with_state(current, TunnelState.DOWN)
        except TunnelTuiError as exc:
            if going_up and needs_vault(exc.message, exc.hint):
                if current is not None:
                    self._pending[name] = current
                self._flush()
                unlock_then(self.app, self.services, f"Bringing {name} up",
                            lambda: self.toggle_tunnel(name, going_up))
                return
            if current is not None:
                self._pending[name] = _with_state(
                    current, TunnelState.FAILED, error=exc.message, hint=exc.hint
                )
            self.app.bell()
            # Short: the detail pane below shows the whole error and its hint.
            self.notify(f"{name}: {failed_word(exc.message)} (details below)", severity="error")
        self._flush()

    def action_validate(self) -> None:
        name = self.table.selected_name
        if name is not None:
            self.post_message(StartValidation(name))

    def action_rotate(self) -> None:
        name = self.table.selected_name
        if name is not None:
            self.post_message(StartRotation(name))

    def action_keys(self) -> None:
        self.post_message(ShowKeys())

    def action_sandbox(self) -> None:
        self.post_message(OpenSandbox())

    def action_copy(self) -> None:
        name = self.table.selected_name
        if name is None:
            return
        conn = self._connections[name]
        status = self.table.status_of(name)
        port = (status.local_port if status else None) or conn.local_port
        if port is None:
            self.notify("Bring the tunnel up first (enter): it has no local port yet.")
            return
        db = conn.database
        text = display.client_command(db.kind.value, db.user, db.database, conn.local_host, port)
        self.app.copy_to_clipboard(text)
        if copy_reaches_clipboard():
            self.notify(text, title="Copied")
        else:
            self.notify("This terminal may not take copies from apps: select the command in "
                        "the pane below.", title="Select the command to copy")

    def action_open_client(self) -> None:
        from tunnel_tui.ui.open_client import open_client

        name = self.table.selected_name
        if name is not None:
            open_client(self, self.services, name)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # Typing stays fluid with 1,000 rows: the list follows once the keys pause.
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value
        self._filter_timer = self.set_timer(0.12, lambda: self.table.set_filter(value))

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.table.set_filter("")
        self.table.focus()

    def action_delete(self) -> None:
        name = self.table.selected_name
        if name is not None:
            self.ask_delete(name)

    @work(group="delete")
    async def ask_delete(self, name: str) -> None:
        from tunnel_tui.ui.screens.confirm import ConfirmScreen

        try:
            plan = await asyncio.to_thread(self.services.removal_plan, name)
        except TunnelTuiError as exc:
            unlock_or_report(self, self.services, exc, f"Deleting {name}",
                             lambda: self.ask_delete(name))
            return
        # The key's line would stay on the bastion, a door left open: offer to remove it.
        # The option stays one short line (a checkbox does not wrap); where the line is
        # goes in the text, which wraps.
        option = "Also remove its key's line from the bastion" if plan.servers else None
        where = f" Its key's line is in {plan.where}." if plan.servers else ""
        screen = ConfirmScreen(
            f"Delete connection {name}?",
            "Its tunnel stops; its key is deleted too unless another connection uses it."
            + where,
            confirm_label="Delete",
            option=option,
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.delete_connection(name, clean_bastion=screen.option_checked)

        self.app.push_screen(screen, done)

    @work(group="delete")
    async def delete_connection(self, name: str, *, clean_bastion: bool = False) -> None:
        try:
            outcome = await asyncio.to_thread(
                self.services.remove, name, clean_bastion=clean_bastion
            )
        except TunnelTuiError as exc:
            unlock_or_report(self, self.services, exc, f"Deleting {name}",
                             lambda: self.delete_connection(name, clean_bastion=clean_bastion))
            return
        for warning in outcome.warnings:
            self.notify(warning, title="Warning", severity="warning")
        removed = [o for o in outcome.remote if o.removed]
        where = f"; its key's line is off {removed[0].server.file}" if removed else ""
        self.notify(f"Deleted {name}{where}")
        self.reload()

    def select(self, name: str) -> None:
        """Move the cursor to a connection (the command palette uses this)."""
        table = self.table
        if name in table.rows:
            table.move_cursor(row=table.get_row_index(name))
            table.focus()


def _with_state(
    status: TunnelStatus, state: TunnelState, *, error: str | None = None, hint: str | None = None
) -> TunnelStatus:
    from dataclasses import replace

    return replace(status, state=state, last_error=error, hint=hint, since=datetime.now(UTC))
