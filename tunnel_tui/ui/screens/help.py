"""Every key, grouped by screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from tunnel_tui.ui.widgets.footer import WrappingFooter

HELP = """\
# tunnel-tui

**Connections**  `a` add · `e` edit · `enter` up/down · `v` validate · `c` copy the
local URL or a ready `psql`/`mysql` command · `o` open that client here (the app
waits; `tunnel-tui exec NAME`) · `/` filter · `delete` delete · `r` rotate the key ·
`k` keys · `s` sandbox (when empty)

**Validation log**  `r` retry · `w` wait for my key (retries up to 60 min) ·
`y` copy a redacted report · `c` copy the public key · `esc` close

**Tunnel form**  `tab` next field · `ctrl+s` save · `esc` cancel; paste a URL or
`host:port` into Host to fill the fields

**Key rotation**  asks first (Cancel is the default) · `r` resume a stopped one ·
`b` roll it back (before its switch) · `esc` close

**Keys**  `g` generate · `p` public key · `delete` delete unused · `r` rotate ·
`esc` back

**Public key**  `c` copy · `t` restricted form · `b` bastion setup (what the
bastion admin runs; `c` copies it) · `esc` close

**Bastion setup**  `c` copy the script · `esc` close

**Anywhere**  `ctrl+p` command palette · `ctrl+t` light/dark · `?` this help · `q` quit

Every action is also a command: `tunnel-tui --help`.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="help.close"),
        Binding("question_mark", "dismiss", "Close", show=False, id="help.close2"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Markdown(HELP)
        yield WrappingFooter()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
