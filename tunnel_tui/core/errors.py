"""Typed errors: every user-visible failure is one of these, with a message, a hint
and (for bad input) the field it concerns, rendered the same in the CLI and the TUI.

Exit codes (DESIGN.md): 1 the operation failed, 2 usage or bad input (nothing changed).
"""

from __future__ import annotations


class TunnelTuiError(Exception):
    """An error a person can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field

    def render(self) -> str:
        """One line (plus the hint on a second line) for stderr or a notification.

        Messages often carry a server's words (a database error, a disconnect reason):
        control characters are shown escaped, never sent to the terminal as such."""
        from tunnel_tui.core.sanitize import terminal_text

        text = f"error: {terminal_text(self.message)}"
        if self.hint:
            text += f"\nhint: {terminal_text(self.hint)}"
        return text


class UsageError(TunnelTuiError):
    """Bad input: a malformed URL, an unknown name, a bad flag. Nothing was changed."""

    exit_code = 2


class NotFoundError(UsageError):
    """A connection, key or host that does not exist."""


class ConfigError(TunnelTuiError):
    """The config file cannot be read (corrupt, symlinked, wrong permissions)."""


class KeyImportError(UsageError):
    """A private key that cannot be imported (format, passphrase, garbage)."""


class SecretStoreError(TunnelTuiError):
    """No usable keyring, a locked keyring, a locked vault, a wrong vault passphrase."""


class HostKeyError(TunnelTuiError):
    """A host key that is unknown (needs consent) or changed (possible MITM)."""


class TunnelError(TunnelTuiError):
    """A tunnel could not be brought up or failed."""
