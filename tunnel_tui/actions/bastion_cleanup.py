"""Taking a removed connection's key off the SSH servers that accepted it.

Removing a connection deletes a key nobody else uses; its line would stay in the bastion's
authorized_keys, a door left open. Before the key is deleted, we log in with it one
last time and remove exactly that key's line (matched by key blob, every other line
untouched: the same edit rotation uses), plus the line of an interrupted rotation's
other key. One login per server; the line of the key we log in with goes last, and
the farthest server (behind jump hosts) first. Failures are reported, never fatal:
the local removal goes ahead and the user gets the line to remove by hand.

The private keys are read before anything is deleted — or, when the caller's only store
is the vault the agent holds, the agent logs in with them (rotation.KeyHolder, the
interface rotation's remove-old uses).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.client_keys import ClientKey
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Connection, Key, SshEndpoint

if TYPE_CHECKING:
    from tunnel_tui.rotation import KeyHolder


@dataclass(frozen=True)
class Server:
    """One SSH server whose authorized_keys holds the key, and the hops to reach it."""

    display: str  # "user@host:port"
    path: tuple[SshEndpoint, ...]  # hops with explicit key ids, this server last

    @property
    def file(self) -> str:
        last = self.path[-1]
        return f"~{last.user}/.ssh/authorized_keys on {last.host}:{last.port}"


@dataclass(frozen=True)
class Outcome:
    key: Key
    server: Server
    removed: bool  # the line was there and is gone now
    error: str | None = None  # why the line could not be removed (it may remain)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key.id,
            "server": self.server.display,
            "removed": self.removed,
            "error": self.error,
        }


@dataclass(frozen=True)
class Plan:
    """What `remove` would take off which servers, with the secrets to log in."""

    work: tuple[tuple[Key, Server], ...]
    secrets: Mapping[str, ClientKey] = field(repr=False)  # read here (empty with `keys`)
    problems: tuple[Outcome, ...]  # servers we cannot even try (a secret is missing)
    keys: KeyHolder | None = None  # the agent holds the keys and logs in itself


def lines_going_away(catalog: Catalog, conn: Connection) -> list[tuple[Key, list[Server]]]:
    """The keys `catalog.remove(conn.name)` will delete (used by this connection only,
    plus an unfinished rotation's other key), each with the servers holding its line:
    the servers that accept the connection's key, logged in to with it."""
    from tunnel_tui.core.catalog import rotation_key_of

    cfg = catalog.load()
    out: list[tuple[Key, list[Server]]] = []
    for kid in dict.fromkeys([conn.key_id] + [h.key_id for h in conn.hops if h.key_id]):
        if kid not in cfg.keys or cfg.users_of(kid) != [conn.name]:
            continue
        if cfg.keys[kid].in_agent:
            continue  # the user's own key from their ssh-agent: its line is not ours to remove
        servers = servers_of(conn, kid)
        out.append((cfg.keys[kid], servers))
        pending = rotation_key_of(cfg, kid)  # rotated before its switch: maybe installed
        if pending is not None:
            out.append((pending, servers))
        for old_id, record in cfg.rotations.items():  # past its switch: the old line
            if record.get("new_key_id") == kid and old_id in cfg.keys:
                if not cfg.users_of(old_id):
                    out.append((cfg.keys[old_id], servers))
    return out


def servers_of(conn: Connection, key_id: str) -> list[Server]:
    """The hops of `conn` that log in with `key_id`, each with the path to it."""
    servers: dict[str, Server] = {}
    path: list[SshEndpoint] = []
    for hop in conn.hops:
        effective = hop.key_id or conn.key_id
        path.append(dataclasses.replace(hop, key_id=effective))
        if effective == key_id and hop.display not in servers:
            servers[hop.display] = Server(hop.display, tuple(path))
    return list(servers.values())


def plan(catalog: Catalog, conn: Connection, *, keys: KeyHolder | None = None) -> Plan:
    """Read every private key the logins need now, before the removal deletes them;
    with `keys` (the agent holds them: actions.agent_keys) nothing is read here."""
    work: list[tuple[Key, Server]] = []
    secrets: dict[str, ClientKey] = {}
    problems: list[Outcome] = []
    for key, servers in lines_going_away(catalog, conn):
        for server in servers:
            try:
                for hop in server.path:
                    assert hop.key_id is not None
                    if keys is None and hop.key_id not in secrets:
                        secrets[hop.key_id] = catalog.client_key(hop.key_id)
            except TunnelTuiError as exc:
                problems.append(Outcome(key, server, False, exc.message))
                continue
            work.append((key, server))
    return Plan(tuple(work), secrets, tuple(problems), keys)


async def _clean_server(server: Server, keys: Sequence[Key], holder: KeyHolder) -> list[Outcome]:
    """One login per server (with the connection's key), removing every line in `keys`:
    the line of the key we log in with goes last, or the later edits would be locked out."""
    login = server.path[-1].key_id
    ordered = sorted(keys, key=lambda k: k.id == login)
    try:
        removals = await holder.remove_lines(server.path, [k.public_key for k in ordered])
    except TunnelTuiError as exc:
        return [Outcome(k, server, False, exc.message) for k in ordered]
    except (OSError, TimeoutError) as exc:
        return [Outcome(k, server, False, str(exc) or type(exc).__name__) for k in ordered]
    return [
        Outcome(key, server, r.changed, _MANUAL if r.manual else r.error)
        for key, r in zip(ordered, removals, strict=True)
    ]


_MANUAL = "the account allows neither SFTP nor a shell"


async def _remove_all(work: Plan, holder: KeyHolder) -> list[Outcome]:
    outcomes = list(work.problems)
    by_server: dict[str, tuple[Server, list[Key]]] = {}
    for key, server in work.work:
        by_server.setdefault(server.display, (server, []))[1].append(key)
    # Farthest first: reaching the bastion goes through the jump hosts, whose own lines
    # must still be there while we do.
    for server, keys in sorted(by_server.values(), key=lambda item: -len(item[0].path)):
        outcomes += await _clean_server(server, keys, holder)
    return outcomes


def remove_lines(work: Plan, *, home: Path | None = None, timeout: float = 15.0) -> list[Outcome]:
    """Log in to each server with the keys in `work` (here, or in the agent when it
    holds them) and remove the key's line. Blocking (runs its own event loop): call it
    from a thread in async code."""
    if not work.work:
        return list(work.problems)
    holder = work.keys
    if holder is None:
        from tunnel_tui.core.known_hosts import KnownHosts
        from tunnel_tui.core.paths import known_hosts_path
        from tunnel_tui.rotation import LocalKeys

        holder = LocalKeys(
            work.secrets.__getitem__, KnownHosts(known_hosts_path(home)), timeout=timeout
        )
    return asyncio.run(_remove_all(work, holder))


def describe(servers: Sequence[Server]) -> str:
    return ", ".join(s.file for s in servers)
