"""Which SSH servers a rotation edits: each distinct user@host:port that logs in with
the key, reached along the hops of the first connection (by name) that goes there."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from tunnel_tui.core.model import Connection, SshEndpoint


@dataclass(frozen=True)
class Target:
    """One SSH server whose authorized_keys holds the key, and the hops to reach it."""

    display: str  # "user@host:port"
    path: tuple[SshEndpoint, ...]  # hops, this server last; key_id explicit on each


def rotation_targets(connections: Iterable[Connection], key_ids: set[str]) -> list[Target]:
    """Distinct servers (bastions and jump hosts) that log in with one of `key_ids`."""
    targets: dict[str, Target] = {}
    for conn in sorted(connections, key=lambda c: c.name):
        path: list[SshEndpoint] = []
        for hop in conn.hops:
            effective = hop.key_id or conn.key_id
            path.append(dataclasses.replace(hop, key_id=effective))
            if effective in key_ids and hop.display not in targets:
                targets[hop.display] = Target(hop.display, tuple(path))
    return list(targets.values())
