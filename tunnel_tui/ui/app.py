"""The Textual app: screens, bindings and wiring only. Work lives in the screens and
`services.py`; screens never import this module.

The sandbox is not ours to start (ui never imports demo): the caller passes a
starter as `open_sandbox`, and the app hands it back as its return value when the
user asks for the sandbox, for the caller to run once the terminal is released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen

from tunnel_tui.core.sanitize import terminal_text
from tunnel_tui.ui.messages import OpenSandbox, ShowKeys, StartRotation, StartValidation
from tunnel_tui.ui.palette import TunnelCommands
from tunnel_tui.ui.screens.connections import ConnectionsScreen
from tunnel_tui.ui.services import RealServices, Services
from tunnel_tui.ui.themes import DARK, LIGHT, TUNNEL_LIGHT

SandboxStarter = Callable[[], None]


class TunnelTuiApp(App[SandboxStarter | None]):
    CSS_PATH = "app.tcss"
    TITLE = "tunnel-tui"
    COMMANDS = App.COMMANDS | {TunnelCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+p", "command_palette", "Palette", priority=True, id="app.palette"),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False, id="app.theme"),
    ]

    def __init__(
        self,
        services: Services | None = None,
        *,
        refresh_seconds: float = 2.0,
        clock: Callable[[], datetime] | None = None,
        open_sandbox: SandboxStarter | None = None,
        validate_retry_seconds: float = 5.0,
        greeting: str | None = None,
        title: str = "tunnel-tui",
        remember_settings: bool = False,
        in_sandbox: bool = False,
    ) -> None:
        super().__init__()
        self.register_theme(TUNNEL_LIGHT)
        self._settings_home = getattr(services, "home", None)
        self._remember = remember_settings
        self._in_sandbox = in_sandbox
        if remember_settings:
            from tunnel_tui.core import ui_settings

            saved = ui_settings.load(self._settings_home).theme
            if saved in (DARK, LIGHT):
                self.theme = saved
        self.title = title
        self._greeting = greeting
        self.services: Services = services or RealServices()
        prefetch = getattr(self.services, "prefetch", None)
        if prefetch is not None:
            prefetch()  # the config parses while Textual starts up
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._open_sandbox = open_sandbox
        self.validate_retry_seconds = validate_retry_seconds

    def on_mount(self) -> None:
        self.push_screen(
            ConnectionsScreen(
                self.services,
                refresh_seconds=self._refresh_seconds,
                clock=self._clock,
                sandbox_offer=self._open_sandbox is not None,
                title=self.title,
                in_sandbox=self._in_sandbox,
            )
        )
        if self._greeting:
            self.notify(self._greeting, title="Sandbox", timeout=15)

    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information",
        timeout: float | None = None, markup: bool = True,
    ) -> None:
        """Every toast: plain text (an error's message may carry a server's words, so no
        markup is interpreted and control characters are shown escaped)."""
        super().notify(terminal_text(message), title=terminal_text(title), severity=severity,
                       timeout=timeout, markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A dialog's footer shows the dialog's own keys, not the app's.
        if action in ("quit", "help", "command_palette") and isinstance(self.screen, ModalScreen):
            return False
        return True

    def action_help(self) -> None:
        from tunnel_tui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own commands, but Theme is ours: the dark and the light theme (as
        ctrl+t, remembered), not Textual's picker of themes the app was not checked in."""
        for command in super().get_system_commands(screen):
            if command.title != "Theme":
                yield command
        yield SystemCommand("Theme", "Switch between the dark and the light theme (ctrl+t)",
                            self.action_toggle_dark)

    def action_toggle_dark(self) -> None:
        self.theme = LIGHT if self.current_theme.dark else DARK
        if self._remember:
            self.run_worker(partial(self._save_theme, self.theme), thread=True,
                            group="settings", exclusive=True)

    def _save_theme(self, theme: str) -> None:
        from tunnel_tui.core import ui_settings
        from tunnel_tui.core.errors import TunnelTuiError

        try:
            ui_settings.save(ui_settings.UiSettings(theme=theme), self._settings_home)
        except (TunnelTuiError, OSError) as exc:
            self.call_from_thread(self.notify, str(exc), title="The theme is not remembered",
                                  severity="warning")

    def on_start_validation(self, message: StartValidation) -> None:
        from tunnel_tui.ui.screens.validation import ValidationScreen

        self.push_screen(
            ValidationScreen(
                self.services,
                message.connection,
                wait_for_key=message.wait_for_key,
                retry_seconds=self.validate_retry_seconds,
            )
        )

    def on_start_rotation(self, message: StartRotation) -> None:
        """Asked first (what will happen, or Resume / Roll back a stopped one)."""
        from tunnel_tui.ui.screens.rotation import RotationScreen
        from tunnel_tui.ui.screens.rotation_confirm import RotationConfirmScreen

        name = message.connection

        def chosen(action: str | None) -> None:
            if action:
                self.push_screen(RotationScreen(self.services, name, action=action))

        self.push_screen(RotationConfirmScreen(self.services, name), chosen)

    def on_show_keys(self, message: ShowKeys) -> None:
        from tunnel_tui.ui.screens.keys import KeysScreen

        self.push_screen(KeysScreen(self.services))

    def on_open_sandbox(self, message: OpenSandbox) -> None:
        if self._open_sandbox is not None:
            # The sandbox replaces this app with one living in a throwaway home.
            self.exit(self._open_sandbox)
