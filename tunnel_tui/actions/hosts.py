"""Trusted SSH host keys (our own known_hosts): list them, forget a host's.

Entries are hashed, so names cannot be shown; each entry is matched against the
configured bastions and jump hosts to say which of them it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunnel_tui.actions.session import Session
from tunnel_tui.core.known_hosts import KnownHostEntry, KnownHosts, parse_host_port


def _known_hosts(session: Session) -> KnownHosts:
    from tunnel_tui.core.paths import known_hosts_path

    return KnownHosts(known_hosts_path(session.home))


@dataclass(frozen=True)
class TrustedHost:
    entry: KnownHostEntry
    connections: list[str]  # configured connections that log in to this host
    ours: bool  # in our known_hosts (else read-only, from ~/.ssh/known_hosts)

    def to_json(self) -> dict[str, object]:
        return {**self.entry.to_json(), "connections": self.connections}


@dataclass(frozen=True)
class HostList:
    path: Path  # our known_hosts
    hosts: list[TrustedHost]


def list_hosts(session: Session, *, include_user: bool = False) -> HostList:
    known = _known_hosts(session)
    hops = _configured_hops(session)
    entries = known.entries(hops, include_user=include_user)
    return HostList(
        known.path,
        [TrustedHost(e, _connections_of(e, hops), e.source == known.path) for e in entries],
    )


@dataclass(frozen=True)
class ForgetResult:
    host: str
    port: int
    removed: int  # entries removed from our known_hosts
    in_user_known_hosts: bool  # ~/.ssh/known_hosts still trusts it (we never edit that)
    path: Path

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "removed": self.removed,
            "in_user_known_hosts": self.in_user_known_hosts,
        }


def forget(session: Session, target: str) -> ForgetResult:
    """Forget the trusted key(s) of "HOST[:PORT]" (port 22 by default)."""
    host, port = parse_host_port(target)
    known = _known_hosts(session)
    removed = known.forget(host, port)
    return ForgetResult(host, port, removed, known.in_user_known_hosts(host, port), known.path)


def _configured_hops(session: Session) -> dict[tuple[str, int], list[str]]:
    """(host, port) of every bastion and jump host -> connection names."""
    hops: dict[tuple[str, int], list[str]] = {}
    for name, conn in sorted(session.catalog().load().connections.items()):
        for hop in conn.hops:
            users = hops.setdefault((hop.host, hop.port), [])
            if name not in users:
                users.append(name)
    return hops


def _connections_of(entry: KnownHostEntry, hops: dict[tuple[str, int], list[str]]) -> list[str]:
    names: list[str] = []
    for (host, port), users in hops.items():
        if f"{host}:{port}" in entry.labels:
            names += [n for n in users if n not in names]
    return names
