"""Taking a removed connection's key off the SSH servers that accepted it.

Removing a connection deletes a key nobody else uses; its line would stay in the bastion's
authorized_keys, a door left open. Before the key is deleted, we log in with it one
last time and remove exactly that key's line (matched by key blob, every other line
untouched: the same edit rotation uses), plus the line of an interrupted rotation's
other key. One login per server; the line of the key we log in with goes last, and
the farthest server (behind jump hosts) first. Failures are reported, never fatal:
the local removal goes ahead and the user gets the line to remove by hand.

The private keys are read before anything is deleted; asyncssh is imported only here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.client_keys import ClientKey
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Connection, Key, SshEndpoint


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
    secrets: Mapping[str, ClientKey]
    problems: tuple[Outcome, ...]  # servers we cannot even try (a secret is missing)


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


def plan(catalog: Catalog, conn: Connection) -> Plan:
    """Read every private key the logins need now, before the removal deletes them."""
    work: list[tuple[Key, Server]] = []
    secrets: dict[str, ClientKey] = {}
    problems: list[Outcome] = []
    for key, servers in lines_going_away(catalog, conn):
        for server in servers:
            try:
                for hop in server.path:
                    assert hop.key_id is not None
                    if hop.key_id not in secrets:
                        secrets[hop.key_id] = catalog.client_key(hop.key_id)
            except TunnelTuiError as exc:
                problems.append(Outcome(key, server, False, exc.message))
                continue
            work.append((key, server))
    return Plan(tuple(work), secrets, tuple(problems))


async def _clean_server(
    server: Server, keys: Sequence[Key], secrets: Mapping[str, ClientKey], known_hosts: object,
    timeout: float,
) -> list[Outcome]:
    """One login per server (with the connection's key), removing every line in `keys`:
    the line of the key we log in with goes last, or the later edits would be locked out."""
    from tunnel_tui.engine.authorized_keys import ManualInstallRequired, remove_authorized_key
    from tunnel_tui.engine.settings import EngineSettings
    from tunnel_tui.engine.ssh import close_all, connect_hops

    login = server.path[-1].key_id
    ordered = sorted(keys, key=lambda k: k.id == login)

    def failed(error: str) -> list[Outcome]:
        return [Outcome(k, server, False, error) for k in ordered]

    try:
        conns = await connect_hops(
            server.path,
            secrets,
            known_hosts,  # type: ignore[arg-type]  # core KnownHosts fits KnownHostsLike
            settings=EngineSettings(connect_timeout=timeout),
        )
    except TunnelTuiError as exc:
        return failed(exc.message)
    except (OSError, TimeoutError) as exc:
        return failed(str(exc) or type(exc).__name__)
    outcomes: list[Outcome] = []
    try:
        for key in ordered:
            try:
                result = await remove_authorized_key(conns[-1], key.public_key, timeout=timeout)
            except ManualInstallRequired:
                outcomes.append(
                    Outcome(key, server, False, "the account allows neither SFTP nor a shell")
                )
            except TunnelTuiError as exc:
                outcomes.append(Outcome(key, server, False, exc.message))
            except (OSError, TimeoutError) as exc:
                outcomes.append(Outcome(key, server, False, str(exc) or type(exc).__name__))
            else:
                outcomes.append(Outcome(key, server, result.changed))
    finally:
        await close_all(conns)
    return outcomes


async def _remove_all(work: Plan, known_hosts: object, timeout: float) -> list[Outcome]:
    outcomes = list(work.problems)
    by_server: dict[str, tuple[Server, list[Key]]] = {}
    for key, server in work.work:
        by_server.setdefault(server.display, (server, []))[1].append(key)
    # Farthest first: reaching the bastion goes through the jump hosts, whose own lines
    # must still be there while we do.
    for server, keys in sorted(by_server.values(), key=lambda item: -len(item[0].path)):
        outcomes += await _clean_server(server, keys, work.secrets, known_hosts, timeout)
    return outcomes


def remove_lines(work: Plan, *, home: Path | None = None, timeout: float = 15.0) -> list[Outcome]:
    """Log in to each server with the keys in `work` and remove the key's line.
    Blocking (runs its own event loop): call it from a thread in async code."""
    if not work.work:
        return list(work.problems)
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.paths import known_hosts_path

    return asyncio.run(_remove_all(work, KnownHosts(known_hosts_path(home)), timeout))


def describe(servers: Sequence[Server]) -> str:
    return ", ".join(s.file for s in servers)
