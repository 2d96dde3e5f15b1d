"""What someone pasted into a Host field: a database URL, an ssh:// address,
`user@host:port` or `host:port` — split into the form's fields.

The form fills its fields from it (scheme -> database kind, port, user, database, TLS
option) or says where the text belongs; it never answers a pasted URL with a host-name
error. A password inside a pasted URL is dropped and reported, never kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from tunnel_tui.core.model import DbKind
from tunnel_tui.core.urls import SCHEMES

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_PORT = re.compile(r"\d{1,5}")


@dataclass(frozen=True)
class PastedAddress:
    scheme: str  # "postgresql", "ssh", "http", … or "" for user@host:port
    host: str
    port: int | None = None
    user: str = ""
    database: str = ""
    options: tuple[tuple[str, str], ...] = ()
    had_password: bool = False

    @property
    def kind(self) -> DbKind | None:
        """The database kind of a database URL (None for ssh://, http://, no scheme)."""
        return SCHEMES.get(self.scheme)

    @property
    def is_ssh(self) -> bool:
        return self.scheme == "ssh"


def read_pasted(text: str) -> PastedAddress | None:
    """The parts of a pasted address, or None when `text` is a plain host (or an IPv6
    address) with nothing to split."""
    text = text.strip()
    match = _SCHEME.match(text)
    if match:
        return _from_url(match.group(1).lower(), text)
    if "@" not in text and text.count(":") != 1 and not text.startswith("["):
        return None  # a host name, an IPv4 or a bare IPv6 address
    user, at, hostport = text.rpartition("@")
    host, port = _split_hostport(hostport)
    if port is None and not at:
        return None
    return PastedAddress("", host, port, unquote(user) if at else "")


def _from_url(scheme: str, text: str) -> PastedAddress:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = urlsplit(text.split("?")[0].split("/", 3)[0] + "//"), None
    host = parts.hostname or ""
    database = unquote(parts.path.lstrip("/")) if scheme != "ssh" else ""
    try:
        options = tuple(parse_qsl(parts.query, keep_blank_values=True))
    except ValueError:
        options = ()
    options = tuple((k, v) for k, v in options if k.lower() not in _PASSWORD_KEYS)
    had_password = parts.password is not None or any(
        k.lower() in _PASSWORD_KEYS for k, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    return PastedAddress(
        scheme,
        host,
        port,
        unquote(parts.username or ""),
        database,
        options,
        had_password,
    )


_PASSWORD_KEYS = ("password", "pass", "passwd", "pwd")


def _split_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        return text, None
    if _PORT.fullmatch(port or ""):
        return host, int(port)
    return (host if text.startswith("[") else text), None
