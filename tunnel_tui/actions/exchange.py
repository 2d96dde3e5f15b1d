"""Team export / import of connection definitions (DESIGN.md, "export").

The file is TOML, safe to mail around: no secret, no private key, no password.

    version = 1

    [[connection]]
    name = "prod"
    db = "postgresql://app@10.0.12.34:5432/appdb"   # as the bastion sees it
    ssh = "ssh://tunnel@bastion.example.com:22"
    jumps = ["ssh://me@jump.example.com:22"]        # or {ssh = "...", key = "NAME"}
    local_port = 54321                               # optional
    key = "prod"                                     # a key NAME, shared names share
    autostart = false

`import` adds them all or nothing: by default one new key is generated per distinct
key name (connections sharing a name in the file share the new key); `use_key` maps
every reference to one stored key instead. A connection whose name exists already is
refused (naming both); a local port already taken gets a free one (reported); a
malformed file is refused with its line.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.model import Connection, Keepalive

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.catalog import AddResult, KeyChoice
    from tunnel_tui.core.model import Key, SshEndpoint

__all__ = ["FORMAT_VERSION", "ImportResult", "PortMove", "export_text", "import_text"]

FORMAT_VERSION = 1
HEADER = "# tunnel-tui connections: no secrets, no private keys. Add them with\n" \
         "#   tunnel-tui import FILE      (new keys)  or  --use-key KEY  (one stored key)\n"
_FIELDS = {"name", "db", "ssh", "jumps", "local_port", "key", "autostart", "keepalive"}
_HEADER_LINE = re.compile(r"^\s*\[\[\s*connection\s*\]\]")


# -- export -----------------------------------------------------------------------------


def export_text(session: Session, names: Sequence[str] = ()) -> str:
    """NAMES (all when empty) as the exchange TOML. Unknown name: NotFoundError (2)."""
    import tomli_w

    catalog = session.catalog()  # the config only: no secret store is opened
    cfg = catalog.load()
    conns = [catalog.get(n) for n in dict.fromkeys(names)] if names else catalog.connections()
    tables = [_connection_table(conn, cfg.keys) for conn in conns]
    doc: dict[str, Any] = {"version": FORMAT_VERSION}
    if tables:
        doc["connection"] = tables
    return HEADER + tomli_w.dumps(doc)


def _connection_table(conn: Connection, keys: dict[str, Key]) -> dict[str, Any]:
    from tunnel_tui.core.urls import format_db_url, format_ssh_url

    def key_name(key_id: str) -> str:
        key = keys.get(key_id)
        return key.name if key is not None else key_id

    table: dict[str, Any] = {
        "name": conn.name,
        "db": format_db_url(conn.database),
        "ssh": format_ssh_url(conn.bastion),
        "jumps": [
            {"ssh": format_ssh_url(j), "key": key_name(j.key_id)} if j.key_id
            else format_ssh_url(j)
            for j in conn.jumps
        ],
        "key": key_name(conn.key_id),
        "autostart": conn.autostart,
    }
    if conn.local_port is not None:
        table["local_port"] = conn.local_port
    if conn.keepalive != Keepalive():
        table["keepalive"] = {
            "interval": conn.keepalive.interval, "count_max": conn.keepalive.count_max
        }
    return table


# -- import -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortMove:
    name: str
    wanted: int
    taken_by: str  # the connection that has it (here, or earlier in the file)
    got: int


@dataclass(frozen=True)
class ImportResult:
    added: list[AddResult]
    port_moves: list[PortMove] = field(default_factory=list)

    @property
    def new_keys(self) -> dict[str, list[str]]:
        """New key name -> the imported connections that use it."""
        keys: dict[str, list[str]] = {}
        for result in self.added:
            if result.new_key:
                keys.setdefault(result.key.name, []).append(result.connection.name)
        return keys


def import_text(
    session: Session, text: str, *, source: str = "the file", use_key: str | None = None
) -> ImportResult:
    """Add the connections in TEXT (from SOURCE, for messages), all or nothing.
    UsageError (exit 2) for a malformed file or a clash; nothing is written then."""
    from tunnel_tui.core.catalog import GenerateKey, ReuseKey

    catalog = session.catalog()
    cfg = catalog.load()
    parsed = _parse(text, source)
    for entry in parsed:
        if entry.conn.name in cfg.connections:
            raise UsageError(
                f"{entry.where}: the connection {entry.conn.name!r} in {source} clashes with "
                f"the existing connection {entry.conn.name!r}; nothing was imported",
                field="name",
                hint=f"rename it in {source}, or remove yours first: "
                f"tunnel-tui remove {entry.conn.name}",
            )
    conns, moves = _free_ports([e.conn for e in parsed], cfg.connections)
    refs = list(dict.fromkeys(ref for c in conns for ref in _key_refs(c)))
    choices: dict[str, KeyChoice]
    if use_key is not None:
        key = catalog.key(use_key)  # NotFoundError (2) for an unknown key
        choices = {ref: ReuseKey(key.id) for ref in refs}
    else:
        choices = {ref: GenerateKey(name=ref) for ref in refs}
    return ImportResult(catalog.add_many(conns, choices), moves)


def _key_refs(conn: Connection) -> list[str]:
    return [conn.key_id] + [j.key_id for j in conn.jumps if j.key_id]


def _free_ports(
    conns: list[Connection], existing: dict[str, Connection]
) -> tuple[list[Connection], list[PortMove]]:
    import dataclasses

    owners = {c.local_port: c.name for c in existing.values() if c.local_port is not None}
    out: list[Connection] = []
    moves: list[PortMove] = []
    for conn in conns:
        port = conn.local_port
        if port is not None and port in owners:
            new_port = _free_port(set(owners))
            moves.append(PortMove(conn.name, port, owners[port], new_port))
            conn = dataclasses.replace(conn, local_port=new_port)
        if conn.local_port is not None:
            owners[conn.local_port] = conn.name
        out.append(conn)
    return out, moves


def _free_port(taken: set[int]) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise UsageError("no free local port found")  # 100 tries: not seen in practice


# -- parsing, with the line of each problem ----------------------------------------------


@dataclass(frozen=True)
class _Entry:
    conn: Connection
    where: str  # "FILE, line N"


def _parse(text: str, source: str) -> list[_Entry]:
    import tomli

    try:
        doc = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise UsageError(f"{source} is not valid TOML: {exc}", hint=_FIX) from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply", hint=_FIX) from None
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise UsageError(
            f"{source}, line {_line_of(text.splitlines(), 'version') or 1}: version must be "
            f"{FORMAT_VERSION}, not {version!r}",
            hint="export it again with this tunnel-tui, or fix the version",
        )
    unknown = sorted(set(doc) - {"version", "connection"})
    if unknown:
        raise UsageError(f"{source}: unknown top-level field {unknown[0]!r}", hint=_FIX)
    tables = doc.get("connection", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"{source}: `connection` must be [[connection]] tables", hint=_FIX)
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADER_LINE.match(line)]
    entries: list[_Entry] = []
    seen: dict[str, str] = {}
    for index, table in enumerate(tables):
        block = (starts[index], starts[index + 1] if index + 1 < len(starts) else len(lines)) \
            if index < len(starts) else (0, len(lines))
        reader = _TableReader(table, lines, block, source)
        conn = reader.connection()
        if conn.name in seen:
            raise UsageError(
                f"{reader.where('name')}: the connection {conn.name!r} is in {source} twice "
                f"(also at {seen[conn.name]})", field="name", hint=_FIX,
            )
        seen[conn.name] = reader.where("name")
        entries.append(_Entry(conn, reader.where("name")))
    return entries


_FIX = "fix the file (or export it again) and run import again; nothing was imported"


def _line_of(lines: list[str], name: str, start: int = 0, end: int | None = None) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*=")
    for i in range(start, len(lines) if end is None else end):
        if pattern.match(lines[i]):
            return i + 1
    return None


class _TableReader:
    def __init__(
        self, table: dict[str, Any], lines: list[str], block: tuple[int, int], source: str
    ) -> None:
        self.table = table
        self.lines = lines
        self.block = block
        self.source = source

    def where(self, field_name: str | None = None) -> str:
        line = _line_of(self.lines, field_name, *self.block) if field_name else None
        return f"{self.source}, line {line or self.block[0] + 1}"

    def fail(self, field_name: str | None, what: str) -> UsageError:
        name = self.table.get("name")
        label = f" (connection {name!r})" if isinstance(name, str) else ""
        return UsageError(f"{self.where(field_name)}{label}: {what}", field=field_name, hint=_FIX)

    def text(self, field_name: str, *, required: bool = True) -> str | None:
        value = self.table.get(field_name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(field_name, f"`{field_name}` must be a non-empty string")
        return value

    def parsed(self, field_name: str, parse: Any, value: Any) -> Any:
        try:
            return parse(value)
        except UsageError as exc:
            raise self.fail(field_name, f"`{field_name}`: {exc.message}") from None

    def connection(self) -> Connection:
        from tunnel_tui.core.urls import (
            check_local_port,
            parse_db_url,
            parse_ssh_url,
            validate_name,
        )

        unknown = sorted(set(self.table) - _FIELDS)
        if unknown:
            raise self.fail(unknown[0], f"unknown field {unknown[0]!r}")
        name = str(self.text("name"))
        self.parsed("name", validate_name, name)
        database = self.parsed("db", parse_db_url, str(self.text("db")))
        bastion = self.parsed("ssh", parse_ssh_url, str(self.text("ssh")))
        key = self.text("key", required=False) or name
        jumps = tuple(self._jump(j, parse_ssh_url) for j in self._list("jumps"))
        port = self.table.get("local_port")
        if port is not None:
            if not isinstance(port, int) or isinstance(port, bool):
                raise self.fail("local_port", "`local_port` must be a number (1-65535)")
            self.parsed("local_port", check_local_port, port)
        autostart = self.table.get("autostart", False)
        if not isinstance(autostart, bool):
            raise self.fail("autostart", "`autostart` must be true or false")
        return Connection(
            name=name, database=database, bastion=bastion, key_id=key, jumps=jumps,
            local_port=port, keepalive=self._keepalive(), autostart=autostart,
        )  # fmt: skip

    def _list(self, field_name: str) -> list[Any]:
        value = self.table.get(field_name, [])
        if not isinstance(value, list):
            raise self.fail(field_name, f"`{field_name}` must be an array")
        return value

    def _jump(self, item: Any, parse: Any) -> SshEndpoint:
        import dataclasses

        if isinstance(item, str):
            return self.parsed("jumps", parse, item)  # type: ignore[no-any-return]
        if isinstance(item, dict) and isinstance(item.get("ssh"), str) and \
                isinstance(item.get("key"), str) and set(item) <= {"ssh", "key"}:
            endpoint = self.parsed("jumps", parse, item["ssh"])
            return dataclasses.replace(endpoint, key_id=item["key"])  # type: ignore[no-any-return]
        raise self.fail("jumps", "each jump is an ssh:// URL or {ssh = URL, key = NAME}")

    def _keepalive(self) -> Keepalive:
        raw = self.table.get("keepalive")
        if raw is None:
            return Keepalive()
        interval, count = (raw.get("interval"), raw.get("count_max")) \
            if isinstance(raw, dict) else (None, None)
        if not isinstance(interval, int | float) or not isinstance(count, int) \
                or isinstance(count, bool) or interval <= 0 or count < 0:
            raise self.fail("keepalive", "`keepalive` is {interval = SECONDS, count_max = N}")
        return Keepalive(float(interval), count)
