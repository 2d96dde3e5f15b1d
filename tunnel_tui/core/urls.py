"""Parsing what people type: database URLs, ssh:// URLs, connection names and the
fields of the add/edit form.

Every mistake is one `UsageError` with `.field` set ("db.host", "ssh.user", "name",
...) so the TUI can show it next to the input and the CLI prints it as one line.
Nothing here echoes a password back, not even in an error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.model import Database, DbKind, SshEndpoint

SCHEMES: dict[str, DbKind] = {
    "postgresql": DbKind.POSTGRESQL,
    "postgres": DbKind.POSTGRESQL,
    "mysql": DbKind.MYSQL,
    "mariadb": DbKind.MYSQL,
    "clickhouse": DbKind.CLICKHOUSE,
    "vertica": DbKind.VERTICA,
    "trino": DbKind.TRINO,
}
KNOWN_SCHEMES = ", ".join(f"{s}://" for s in SCHEMES)

# The option a bare TLS value in the form stands for, per kind (the URL query name).
TLS_OPTION: dict[DbKind, str] = {
    DbKind.POSTGRESQL: "sslmode",
    DbKind.MYSQL: "ssl-mode",
    DbKind.CLICKHOUSE: "secure",
    DbKind.VERTICA: "tlsmode",
    DbKind.TRINO: "ssl",
}
CLICKHOUSE_SECURE_PORT = 8443

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?")
_USER = re.compile(r"[^\s:@/\\\x00-\x1f\x7f]+")  # SSH users (OpenSSH is stricter still)
_DB_USER = re.compile(r"[^\s\x00-\x1f\x7f]+")  # e.g. Azure's user@server is fine
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
PASSWORD_HINT = "leave the password out of the URL and pass it with --db-password-stdin"


def validate_name(name: str, *, field: str = "name") -> str:
    """A connection or key name: letters, digits, '.', '_', '-'; up to 63 characters.

    Names end up in keyring entries and authorized_keys comments, so no spaces.
    """
    if not name:
        raise UsageError("the name is empty", field=field, hint="e.g. prod-db")
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid name {_shown(name)}: use letters, digits, '.', '_' or '-' "
            "(up to 63, starting with a letter or digit)",
            field=field,
        )
    return name


def parse_db_url(url: str) -> Database:
    """`postgresql://user@host:5432/db?sslmode=require` -> Database (host as the bastion
    sees it). A password in the URL is refused and never repeated."""
    url = url.strip()
    match = _SCHEME.match(url)
    if not match:
        raise UsageError(
            "not a database URL (it starts with a scheme like postgresql://)",
            field="db.url",
            hint=f"e.g. postgresql://user@db.internal:5432/app (known: {KNOWN_SCHEMES})",
        )
    scheme = match.group(1).lower()
    kind = SCHEMES.get(scheme)
    if kind is None:
        raise UsageError(
            f"unknown database scheme {_shown(scheme + '://')}",
            field="db.kind",
            hint=f"use one of {KNOWN_SCHEMES}",
        )
    rest = url[match.end() :]
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise UsageError("a database URL has no '#' part", field="db.url")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        raise UsageError(
            "the database user is missing",
            field="db.user",
            hint=f"put it before the host: {scheme}://USER@host",
        )
    if ":" in userinfo:
        raise UsageError(
            "a password inside the database URL is not accepted (it would end up in "
            "your shell history)",
            field="db.password",
            hint=PASSWORD_HINT,
        )
    user = _parse_user(userinfo, "db.user", f"{scheme}://USER@host", _DB_USER)
    host, port = _parse_hostport(hostport, "db")
    database = unquote(path) if slash else ""
    if "/" in database:
        raise UsageError(
            f"invalid database name {_shown(database)}: only one path segment is allowed",
            field="db.database",
        )
    if any(c.isspace() or ord(c) < 32 for c in database):
        raise UsageError(f"invalid database name {_shown(database)}", field="db.database")
    options = _parse_options(query)
    if port is None:
        port = _default_port(kind, options)
    return Database(kind=kind, host=host, port=port, database=database, user=user, options=options)


def parse_ssh_url(url: str, *, field: str = "ssh") -> SshEndpoint:
    """`ssh://user@host:22` (or plain `user@host[:port]`) -> SshEndpoint; the user is
    required, the port defaults to 22. `field` prefixes the error fields ("ssh", "jump")."""
    url = url.strip()
    match = _SCHEME.match(url)
    rest = url
    if match:
        if match.group(1).lower() != "ssh":
            raise UsageError(
                f"an SSH address starts with ssh://, not {_shown(match.group(1) + '://')}",
                field=f"{field}.url",
                hint="e.g. ssh://tunnel@bastion.example.com:22",
            )
        rest = url[match.end() :]
    if rest.endswith("/"):
        rest = rest[:-1]
    if any(c in rest for c in "/?#"):
        raise UsageError(
            "an SSH address has no path or query: ssh://user@host:port",
            field=f"{field}.url",
            hint="e.g. ssh://tunnel@bastion.example.com:22",
        )
    userinfo, at, hostport = rest.rpartition("@")
    if not at:
        raise UsageError(
            "the SSH user is missing",
            field=f"{field}.user",
            hint="put it before the host: ssh://USER@bastion.example.com",
        )
    if ":" in userinfo:
        raise UsageError(
            "SSH passwords are not supported: tunnel-tui uses key authentication only",
            field=f"{field}.password",
            hint="remove the password from the address; the key is chosen with "
            "--generate-key, --identity or --use-key",
        )
    user = _parse_user(userinfo, f"{field}.user", "ssh://USER@bastion.example.com", _USER)
    host, port = _parse_hostport(hostport, field)
    return SshEndpoint(host=host, user=user, port=22 if port is None else port)


def format_db_url(db: Database) -> str:
    """The URL that parses back to `db` (used by `show` and the edit form)."""
    host = f"[{db.host}]" if ":" in db.host else db.host
    port = "" if db.port == _default_port(db.kind, db.options) else f":{db.port}"
    user = f"{quote(db.user, safe='')}@"
    path = f"/{quote(db.database, safe='')}" if db.database else ""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in db.options)
    return f"{db.kind.value}://{user}{host}{port}{path}" + (f"?{query}" if query else "")


def format_ssh_url(endpoint: SshEndpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"ssh://{quote(endpoint.user, safe='')}@{host}:{endpoint.port}"


def parse_port(text: str, *, field: str, what: str = "port") -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        raise UsageError(
            f"the {what} must be a number from 1 to 65535, not {_shown(text)}", field=field
        )
    port = int(text)
    if not 1 <= port <= 65535:
        raise UsageError(f"the {what} {port} is out of range (1-65535)", field=field)
    return port


def check_local_port(port: int | None, *, field: str = "local_port") -> int | None:
    """None means "pick a free one on first up"; otherwise 1-65535."""
    if port is None:
        return None
    if not 1 <= port <= 65535:
        raise UsageError(f"the local port {port} is out of range (1-65535)", field=field)
    return port


def parse_kind(text: str, *, field: str = "db.kind") -> DbKind:
    key = text.strip().lower()
    for kind in DbKind:
        if key in (kind.value, kind.label.lower()):
            return kind
    if key in SCHEMES:
        return SCHEMES[key]
    choices = ", ".join(k.value for k in DbKind)
    raise UsageError(f"unknown database kind {_shown(text)}", field=field, hint=f"one of {choices}")


# --- the form ---------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class ConnectionSpec:
    """What the form describes: everything of a Connection except the key."""

    name: str
    database: Database
    bastion: SshEndpoint
    jumps: tuple[SshEndpoint, ...] = ()
    local_port: int | None = None


@dataclass(frozen=True)
class ParsedForm:
    spec: ConnectionSpec | None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.spec is not None


def parse_form(
    *,
    name: str,
    kind: str,
    host: str,
    port: str = "",
    database: str = "",
    user: str = "",
    tls: str = "",
    ssh_host: str,
    ssh_port: str = "",
    ssh_user: str,
    jumps: Iterable[str] = (),
    local_port: str = "",
    taken_names: Iterable[str] = (),
) -> ParsedForm:
    """Check every field of the add/edit form at once: a spec, or all field errors.

    `tls` is either a bare value for the kind's TLS option (postgresql: sslmode=VALUE,
    clickhouse: secure=VALUE, ...) or `key=value&key=value` pairs.
    """
    errors: list[FieldError] = []

    def attempt(fn: Callable[..., object], *args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            errors.append(FieldError(exc.field or "form", exc.message, exc.hint))
            return None

    if attempt(validate_name, name.strip()) is not None and name.strip() in set(taken_names):
        errors.append(
            FieldError(
                "name", f"a connection named {name.strip()!r} already exists", "choose another name"
            )
        )
    db_kind = attempt(parse_kind, kind)
    db_host = attempt(_check_host, host, "db")
    db_port: object = None
    if port.strip():
        db_port = attempt(parse_port, port, field="db.port")
    db_user = user.strip()
    if not db_user:
        errors.append(FieldError("db.user", "the database user is required"))
    elif not _DB_USER.fullmatch(db_user):
        errors.append(FieldError("db.user", f"invalid database user {_shown(db_user)}"))
    db_name = database.strip()
    if "/" in db_name or any(c.isspace() for c in db_name):
        errors.append(FieldError("db.database", f"invalid database name {_shown(db_name)}"))
    options: object = ()
    if tls.strip() and isinstance(db_kind, DbKind):
        if "=" in tls:
            options = attempt(_parse_options, tls.strip(), field="db.tls")
        else:
            options = ((TLS_OPTION[db_kind], tls.strip()),)
    ssh_h = attempt(_check_host, ssh_host, "ssh")
    ssh_p: object = 22
    if ssh_port.strip():
        ssh_p = attempt(parse_port, ssh_port, field="ssh.port")
    s_user = ssh_user.strip()
    if not s_user:
        errors.append(FieldError("ssh.user", "the SSH user is required"))
    elif not _USER.fullmatch(s_user):
        errors.append(FieldError("ssh.user", f"invalid SSH user {_shown(s_user)}"))
    parsed_jumps = [attempt(parse_ssh_url, j, field="jump") for j in jumps if j.strip()]
    lport: object = None
    if local_port.strip():
        lport = attempt(parse_port, local_port, field="local_port", what="local port")
    if errors:
        return ParsedForm(None, errors)
    assert isinstance(db_kind, DbKind) and isinstance(db_host, str)
    assert isinstance(ssh_h, str) and isinstance(ssh_p, int) and isinstance(options, tuple)
    final_port = db_port if isinstance(db_port, int) else _default_port(db_kind, options)
    spec = ConnectionSpec(
        name=name.strip(),
        database=Database(db_kind, db_host, final_port, db_name, db_user, options),
        bastion=SshEndpoint(host=ssh_h, user=s_user, port=ssh_p),
        jumps=tuple(j for j in parsed_jumps if isinstance(j, SshEndpoint)),
        local_port=lport if isinstance(lport, int) else None,
    )
    return ParsedForm(spec, [])


# --- pieces -----------------------------------------------------------------------


def _shown(text: str, limit: int = 60) -> str:
    """Quote user input for a message, shortened and without control characters."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return repr(cleaned)


def _parse_user(raw: str, field: str, example: str, pattern: re.Pattern[str]) -> str:
    user = unquote(raw)
    if not user:
        raise UsageError("the user is missing", field=field, hint=f"e.g. {example}")
    if not pattern.fullmatch(user):
        raise UsageError(f"invalid user name {_shown(user)}", field=field)
    return user


def _parse_hostport(text: str, prefix: str) -> tuple[str, int | None]:
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(
                f"unclosed '[' in the host {_shown(text)}",
                field=f"{prefix}.host",
                hint="IPv6 addresses look like [::1]:5432",
            )
        host = text[1:end]
        after = text[end + 1 :]
        if after:
            if not after.startswith(":"):
                raise UsageError(
                    f"unexpected text after the host: {_shown(after)}", field=f"{prefix}.host"
                )
            port_text = after[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(
                f"not an IPv6 address: {_shown(host)}", field=f"{prefix}.host"
            ) from None
    else:
        if text.count(":") > 1:
            raise UsageError(
                f"an IPv6 address needs brackets: {_shown(text)}",
                field=f"{prefix}.host",
                hint="e.g. [::1]:5432",
            )
        host, colon, rest = text.partition(":")
        if colon:
            port_text = rest
        host = _check_host(host, prefix)
    port = None
    if port_text is not None:
        # Which port: a URL error is printed without the field name next to it.
        what = {"db": "database port", "ssh": "SSH port", "jump": "jump host port"}
        port = parse_port(port_text, field=f"{prefix}.port", what=what.get(prefix, "port"))
    return host, port


def _check_host(text: str, prefix: str) -> str:
    host = text.strip()
    field = f"{prefix}.host"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise UsageError("the host is empty", field=field, hint="e.g. db.internal or 10.0.12.34")
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            # Only the form's fields get here (URLs split host and port first).
            raise UsageError(
                f"invalid host {_shown(host)}: give a host name or IP address here "
                "and the port in Port",
                field=field,
                hint="e.g. db.internal, 10.0.12.34 or 2001:db8::5",
            ) from None
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        raise UsageError(f"invalid host name {_shown(host)}", field=field)
    return host


def _parse_options(query: str, *, field: str = "db.options") -> tuple[tuple[str, str], ...]:
    if not query:
        return ()
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise UsageError(
            "cannot read the options after '?'",
            field=field,
            hint="write them as key=value&key=value, e.g. sslmode=require",
        ) from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if not key or not key.isprintable() or not value.isprintable():
            raise UsageError(f"invalid option {_shown(key)}", field=field)
        if key.lower() in ("password", "pass", "passwd", "pwd"):
            raise UsageError(
                "a password in the URL options is not accepted",
                field="db.password",
                hint=PASSWORD_HINT,
            )
        if key in seen:
            raise UsageError(f"the option {_shown(key)} is given twice", field=field)
        seen[key] = value
    return tuple(sorted(seen.items()))


def _default_port(kind: DbKind, options: tuple[tuple[str, str], ...]) -> int:
    if kind is DbKind.CLICKHOUSE and dict(options).get("secure", "").lower() in ("true", "1"):
        return CLICKHOUSE_SECURE_PORT
    return kind.default_port
