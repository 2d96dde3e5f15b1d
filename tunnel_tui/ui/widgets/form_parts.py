"""Small parts of the tunnel form: a radio button that shows its state as a shape, and
a scrolling dialog body that is not itself a tab stop."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.style import Style
from textual.widget import Widget
from textual.widgets import Checkbox, RadioButton


class StateRadioButton(RadioButton):
    """A radio button whose mark is a shape, not only a colour: (●) chosen, ( ) not."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button") if self.value else Style()
        return Content.assemble(("(", Style()), ("●" if self.value else " ", style),
                                (")", Style()))


class StateCheckbox(Checkbox):
    """A checkbox whose mark is a shape, not only a colour: [x] on, [ ] off."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button") if self.value else Style()
        return Content.assemble(("[", Style()), ("x" if self.value else " ", style),
                                ("]", Style()))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # Textual's toggle buttons are one line; with `text-wrap: wrap` a long label
        # (the delete dialog's bastion line) takes the lines it needs.
        return max(1, Widget.get_content_height(self, container, viewport, width))


class FormScroll(VerticalScroll, can_focus=False):
    """The dialog's scrolling body: not a tab stop of its own (tab goes field to field)."""

