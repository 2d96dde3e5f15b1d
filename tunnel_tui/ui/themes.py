"""The app's light theme: Textual's light theme with every colour we draw text or
borders in darkened to at least 4.5:1 against the backgrounds (WCAG AA)."""

from __future__ import annotations

from textual.theme import Theme

DARK = "textual-dark"
LIGHT = "tunnel-light"

TUNNEL_LIGHT = Theme(
    name=LIGHT,
    primary="#004578",
    secondary="#5B3F8C",
    accent="#8A4500",
    warning="#7A5000",
    error="#B00020",
    success="#1B6B24",
    foreground="#1F1F1F",
    background="#F5F5F5",
    surface="#FFFFFF",
    panel="#E6E6E6",
    dark=False,
    variables={
        "primary-muted": "#2D5B82",
        "foreground-muted": "#4D4D4D",
        "text-muted": "#4D4D4D",
        "text-disabled": "#5C5C5C",
        "footer-key-foreground": "#8A4500",
        "block-cursor-text-style": "bold",
        "input-selection-background": "#004578 25%",
    },
)
