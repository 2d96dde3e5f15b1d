"""A footer that wraps onto a second line instead of hiding keys off the right edge
(an 80-column terminal cannot show every key of the main screen on one line)."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class WrappingFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._rows = 1

    def compose(self) -> ComposeResult:
        children = list(super().compose())
        keys = [c for c in children if isinstance(c, FooterKey)]
        need = sum(len(k.key_display) + len(k.description) + 3 for k in keys)
        width = self.size.width or self.app.size.width
        self._rows = 1 if need <= width or not keys else 2
        columns = math.ceil(len(keys) / self._rows) if keys else 1
        if self._rows > 1:
            self.styles.layout = "grid"
            self.styles.grid_size_columns = columns
        else:
            self.styles.layout = "horizontal"
        self.styles.height = self._rows
        yield from children

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)


class FooterYieldsToDialogs:
    """Mixin for a screen with a footer: while a dialog covers the screen, the dialog's
    own footer is the only one (a taller footer underneath would show through)."""

    def on_screen_suspend(self) -> None:
        for footer in self.query(WrappingFooter):  # type: ignore[attr-defined]
            footer.display = False

    def on_screen_resume(self) -> None:
        for footer in self.query(WrappingFooter):  # type: ignore[attr-defined]
            footer.display = True
