"""The light theme is readable (WCAG AA: 4.5:1 for text and borders), and the theme
chosen with ctrl+t is remembered between runs (ui-settings.toml, 0600)."""

from __future__ import annotations

import stat
from typing import Any

from textual.color import Color

from tests.fixtures.ui import FakeServices, frozen_clock
from tunnel_tui.core import ui_settings
from tunnel_tui.ui.app import TunnelTuiApp
from tunnel_tui.ui.themes import DARK, LIGHT

# Every colour the app draws text or a border in, on every background it uses.
FOREGROUNDS = (
    "foreground", "text-muted", "foreground-muted", "text-disabled", "primary",
    "primary-muted", "secondary", "accent", "success", "warning", "error",
    "footer-key-foreground", "footer-description-foreground", "border",
)
BACKGROUNDS = ("background", "surface", "panel", "footer-background")


def _luminance(color: Color) -> float:
    def channel(value: int) -> float:
        v = value / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast(a: Color, b: Color) -> float:
    la, lb = _luminance(a), _luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def _resolve(value: str, under: Color) -> Color:
    if value.startswith("auto"):  # "auto 60%": the contrasting colour at that alpha
        alpha = float(value.split()[1].rstrip("%")) / 100 if " " in value else 1.0
        return under + under.get_contrast_text(alpha)
    color = Color.parse(value)
    return under + color if color.a < 1 else color


async def test_light_theme_text_and_borders_have_contrast() -> None:
    app = TunnelTuiApp(FakeServices(), clock=frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == LIGHT and not app.current_theme.dark
        variables = app.theme_variables
        page = Color.parse(variables["background"])
        low = []
        for bg_name in BACKGROUNDS:
            bg = _resolve(variables[bg_name], page)
            for fg_name in FOREGROUNDS:
                ratio = contrast(_resolve(variables[fg_name], bg), bg)
                if ratio < 4.5:
                    low.append(f"{fg_name} on {bg_name}: {ratio:.2f}")
        assert not low, low


async def test_the_chosen_theme_is_remembered(isolated_env: Any) -> None:
    first = TunnelTuiApp(FakeServices(), clock=frozen_clock, remember_settings=True)
    async with first.run_test(size=(80, 24)) as pilot:
        assert first.theme == DARK
        await pilot.press("ctrl+t")
        await pilot.pause()
        await first.workers.wait_for_complete()
        assert first.theme == LIGHT
    path = ui_settings.settings_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ui_settings.load().theme == LIGHT
    again = TunnelTuiApp(FakeServices(), clock=frozen_clock, remember_settings=True)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == LIGHT and not again.current_theme.dark
    # Tests and screenshots (remember_settings=False) neither read nor write it.
    path.write_text('theme = "textual-dark"\n')
    plain = TunnelTuiApp(FakeServices(), clock=frozen_clock)
    async with plain.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
    assert path.read_text() == 'theme = "textual-dark"\n'


def test_a_broken_settings_file_means_defaults(isolated_env: Any) -> None:
    path = ui_settings.settings_path()
    path.write_text("theme = [not toml")
    assert ui_settings.load().theme is None
    path.write_text('theme = "../../etc"\n')
    assert ui_settings.load().theme is None


async def test_the_palettes_theme_command_is_the_apps_own(isolated_env: Any) -> None:
    """ctrl+p Theme switches between our two themes (the ones checked for contrast) and
    is remembered like ctrl+t; it opened Textual's picker of a dozen other themes."""
    app = TunnelTuiApp(FakeServices(), clock=frozen_clock, remember_settings=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        themes = [c for c in app.get_system_commands(app.screen) if c.title == "Theme"]
        assert len(themes) == 1
        themes[0].callback()
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert app.theme == LIGHT
    assert ui_settings.load().theme == LIGHT
