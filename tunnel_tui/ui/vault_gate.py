"""Work that needs the vault while it is locked here: the app asks for the passphrase
(the unlock dialog), then does the work again — it never points to a CLI command."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunnel_tui.ui.hints import app_hint

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen

    from tunnel_tui.core.errors import TunnelTuiError
    from tunnel_tui.ui.services import Services


def needs_vault(message: str, hint: str | None = None) -> bool:
    """Whether an error (or a failed step) means: unlock the vault and try again."""
    text = f"{message} {hint or ''}".lower()
    return "vault is locked" in text or "vault unlock" in text


def unlock_then(app: App[object], services: Services, what: str,
                again: Callable[[], object], *, otherwise: Callable[[], object] | None = None
                ) -> None:
    """Open the unlock dialog ("`what` needs the vault"); on success call `again`."""
    from tunnel_tui.ui.screens.vault import VaultScreen

    def done(unlocked: bool | None) -> None:
        if unlocked:
            again()
        elif otherwise is not None:
            otherwise()

    app.push_screen(VaultScreen(services, reason=f"{what} needs the vault."), done)


def unlock_or_report(screen: Screen[Any], services: Services, exc: TunnelTuiError,
                     what: str, again: Callable[[], object]) -> None:
    """An action on `screen` failed with `exc`: when it needed the vault, the unlock
    dialog (then `again`); otherwise the error and its hint as an error toast."""
    if needs_vault(exc.message, exc.hint):
        unlock_then(screen.app, services, what, again)
    else:
        screen.notify(app_hint(exc.hint or ""), title=exc.message, severity="error")
