"""Which SSH servers a rotation edits: each distinct user@host:port using the key once."""

from __future__ import annotations

from tunnel_tui.core.model import Connection, Database, DbKind, SshEndpoint
from tunnel_tui.rotation import rotation_targets

DB = Database(DbKind.POSTGRESQL, "db", 5432)
JUMP = SshEndpoint("jump", "ops", 22)
JUMP_OWN_KEY = SshEndpoint("jump2", "ops", 22, key_id="k-jump")
BASTION = SshEndpoint("bastion", "tt", 2222)


def _conn(name: str, key_id: str, bastion: SshEndpoint, *jumps: SshEndpoint) -> Connection:
    return Connection(name, DB, bastion, key_id, jumps=tuple(jumps))


def test_shared_bastion_once_and_jump_hosts_using_the_key() -> None:
    conns = [
        _conn("b", "k-old", BASTION, JUMP),
        _conn("a", "k-old", BASTION),
        _conn("c", "k-other", SshEndpoint("elsewhere", "tt")),
        _conn("d", "k-old", SshEndpoint("other", "tt"), JUMP_OWN_KEY),
    ]
    targets = rotation_targets(conns, {"k-old"})
    assert [t.display for t in targets] == ["tt@bastion:2222", "ops@jump:22", "tt@other:22"]
    # Each path reaches its server; hops carry the key they log in with.
    by_name = {t.display: t for t in targets}
    assert [h.display for h in by_name["tt@bastion:2222"].path] == ["tt@bastion:2222"]
    other = by_name["tt@other:22"].path
    assert [(h.display, h.key_id) for h in other] == [
        ("ops@jump2:22", "k-jump"),
        ("tt@other:22", "k-old"),
    ]


def test_jump_with_the_rotated_key_on_another_keys_connection() -> None:
    jump = SshEndpoint("jump", "ops", 22, key_id="k-old")
    targets = rotation_targets([_conn("x", "k-new-bastion", BASTION, jump)], {"k-old"})
    assert [(t.display, len(t.path)) for t in targets] == [("ops@jump:22", 1)]
