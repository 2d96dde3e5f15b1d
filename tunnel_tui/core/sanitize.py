"""Text a server chose, made safe to show on a terminal (the CLI's and the app's).

Database errors, SSH disconnect reasons, channel-open failure texts, banners and the
`last_error` built from them reach people's terminals. Raw, an ESC or a C1 control
in them is a terminal command: OSC 0 retitles the window, OSC 52 writes the
clipboard (the next paste into a shell runs what the server chose), CSI moves the
cursor or clears the screen. `terminal_text` keeps newline and tab and shows every
other control character as a visible `\\xHH` (`\\uHHHH` for the bidirectional
overrides that reorder what is shown), so nothing is hidden and nothing is obeyed.

JSON output needs none of this: the JSON encoder escapes control characters itself.
"""

from __future__ import annotations

_KEEP = {"\n", "\t"}
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]


def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        if chr(code) not in _KEEP:
            table[code] = f"\\x{code:02x}"
    for code in [*_BIDI, 0x2028, 0x2029]:
        table[code] = f"\\u{code:04x}"
    return table


_TABLE = _table()


def terminal_text(text: str) -> str:
    """`text` with every control character but newline and tab visibly escaped."""
    return text.replace("\r\n", "\n").translate(_TABLE)


def terminal_optional(text: str | None) -> str | None:
    """`terminal_text` for an optional field (a hint, a last error)."""
    return None if text is None else terminal_text(text)


__all__ = ["terminal_optional", "terminal_text"]
