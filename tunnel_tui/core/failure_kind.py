"""A failed tunnel's reason in one or two words ("auth", "dns", "host key", ...).

The STATE cell of the app's list and of `tunnel-tui status` shows `failed: <kind>`;
the whole message and its hint are shown elsewhere (the detail pane, the lines under
the table). Classified from the error text because the agent sends only the text.
"""

from __future__ import annotations

# (kind, phrases): the first kind with a phrase in the (lower-cased) message wins, so
# the more specific kinds come first ("host key" messages may say "refused" too).
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host key", ("host key",)),
    ("dns", (
        "does not resolve", "name or service not known", "temporary failure in name",
        "nodename nor servname", "no address associated", "getaddrinfo", "name resolution",
    )),
    ("auth", (
        "publickey rejected", "permission denied", "authentication failed",
        "access denied", "rejected the key", "password authentication", "auth failed",
        "not authorized", "no private key",
    )),
    ("refused", ("refused", "connection reset")),
    ("timeout", ("timed out", "timeout", "did not answer")),
)
FAILURE_KINDS = tuple(kind for kind, _ in _KINDS)


def failure_kind(error: str | None) -> str | None:
    """The short kind of a failure message, or None when it is none of the known ones."""
    if not error:
        return None
    text = error.lower()
    for kind, phrases in _KINDS:
        if any(phrase in text for phrase in phrases):
            return kind
    return None


def failed_word(error: str | None) -> str:
    """`failed: auth`, or plain `failed` when the reason is not a known kind."""
    kind = failure_kind(error)
    return f"failed: {kind}" if kind else "failed"
