"""Shared rendering for commands: plain tables for people, stable JSON for scripts,
and the JSON shapes of connections and keys (documented in `list --help`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click

from tunnel_tui.core.model import Connection, Key
from tunnel_tui.core.urls import format_db_url


def print_json(value: Any) -> None:
    """One JSON document on stdout, keys in a stable order, UTF-8 as is."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; empty cells shown as '-'."""
    cells = [[str(h) for h in headers]] + [
        [("-" if c is None or c == "" else str(c)) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def warn(message: str) -> None:
    click.echo(message, err=True)


def connection_json(conn: Connection, key: Key | None) -> dict[str, Any]:
    db = conn.database
    return {
        "name": conn.name,
        "kind": db.kind.value,
        "database": {
            "kind": db.kind.value,
            "host": db.host,
            "port": db.port,
            "database": db.database,
            "user": db.user,
            "options": dict(db.options),
            "url": format_db_url(db),
        },
        "target": db.target,
        "bastion": conn.bastion.display,
        "ssh": {"host": conn.bastion.host, "port": conn.bastion.port, "user": conn.bastion.user},
        "jumps": [j.display for j in conn.jumps],
        "key": None
        if key is None
        else {
            "id": key.id,
            "name": key.name,
            "type": key.type.value,
            "fingerprint": key.fingerprint,
            "source": key.source.value,
        },
        "local_host": conn.local_host,
        "local_port": conn.local_port,
        "keepalive": {
            "interval": conn.keepalive.interval,
            "count_max": conn.keepalive.count_max,
        },
        "autostart": conn.autostart,
    }


CONNECTION_JSON_HELP = """\b
JSON (--json), one object per connection (list: an array):
  name, kind (postgresql|mysql|clickhouse|vertica|trino),
  database {kind, host, port, database, user, options {..}, url},
  target "host:port" as the bastion sees it, bastion "user@host:port",
  ssh {host, port, user}, jumps ["user@host:port", ...] (workstation outward),
  key {id, name, type, fingerprint, source} or null, local_host, local_port (null: picked
  on first up), keepalive {interval, count_max}, autostart (the agent brings it up
  when it starts)."""


def key_json(key: Key, used_by: list[str]) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "type": key.type.value,
        "public_key": key.public_key,
        "fingerprint": key.fingerprint,
        "created": key.created.isoformat().replace("+00:00", "Z"),
        "comment": key.comment,
        "used_by": used_by,
        "source": key.source.value,
        "certificate": certificate_json(key.certificate),
    }


def certificate_json(line: str) -> dict[str, Any] | None:
    """A stored certificate's public facts, or None (none stored, or unreadable)."""
    if not line:
        return None
    from tunnel_tui.core.certificates import parse_certificate
    from tunnel_tui.core.errors import KeyImportError

    try:
        cert = parse_certificate(line)
    except KeyImportError:
        return None

    def when(moment: Any) -> str | None:
        return moment.isoformat().replace("+00:00", "Z") if moment is not None else None

    return {
        "key_id": cert.key_id,
        "principals": list(cert.principals),
        "valid_after": when(cert.valid_after),
        "valid_before": when(cert.valid_before),
        "state": cert.state().value,
    }


KEY_JSON_HELP = """\b
JSON (--json): an array of objects with id ("k-" + 8 hex), name, type
(ed25519|rsa|ecdsa|sk-ed25519|sk-ecdsa), public_key ("type base64", no comment),
fingerprint ("SHA256:..." as ssh-keygen -lf), created (ISO 8601 UTC), comment,
used_by [names], source (keyring: our keyring or vault holds it, as the
table's SOURCE says; ssh-agent), certificate {key_id, principals,
valid_after, valid_before (ISO 8601 UTC or null), state (valid|expiring|expired|
not-yet-valid)} or null."""
