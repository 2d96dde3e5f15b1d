"""The objects: Connection (a database behind a bastion) and Key.

Plain frozen dataclasses with no I/O. Parsing of URLs and user input lives in
`core.urls`; persistence in `core.config`. No secret is ever a field here: private
keys and passwords live in the secret store under the names from `secret_names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class DbKind(StrEnum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    CLICKHOUSE = "clickhouse"
    VERTICA = "vertica"
    TRINO = "trino"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def default_port(self) -> int:
        return DEFAULT_PORTS[self]


_LABELS = {
    DbKind.POSTGRESQL: "PostgreSQL",
    DbKind.MYSQL: "MySQL",
    DbKind.CLICKHOUSE: "ClickHouse",
    DbKind.VERTICA: "Vertica",
    DbKind.TRINO: "Trino",
}

DEFAULT_PORTS: dict[DbKind, int] = {
    DbKind.POSTGRESQL: 5432,
    DbKind.MYSQL: 3306,
    DbKind.CLICKHOUSE: 8123,  # HTTP; 8443 with secure=true
    DbKind.VERTICA: 5433,
    DbKind.TRINO: 8080,
}

LOCAL_HOST = "127.0.0.1"


class KeyType(StrEnum):
    ED25519 = "ed25519"
    RSA = "rsa"
    ECDSA = "ecdsa"  # importable, not generated
    # FIDO keys: the private half never leaves the token; used through an ssh-agent.
    SK_ED25519 = "sk-ed25519"
    SK_ECDSA = "sk-ecdsa"


class KeySource(StrEnum):
    """Where the private half of a Key lives."""

    KEYRING = "keyring"  # generated or imported by us: our keyring (or vault) holds it
    SSH_AGENT = "ssh-agent"  # the user's ssh-agent holds it; we never see it



class _Unset:
    """The type of UNSET: an argument not given (None may mean something, e.g. "auto")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

@dataclass(frozen=True)
class Database:
    """The database as the *bastion* sees it."""

    kind: DbKind
    host: str
    port: int
    database: str = ""
    user: str = ""
    # TLS and driver options from the URL query, e.g. {"sslmode": "require"} or
    # {"secure": "true"} for ClickHouse. Kept as sorted pairs so the object is hashable.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> str:
        """"host:port" as the bastion sees it ([v6]:port for IPv6 literals)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class SshEndpoint:
    """An SSH server: the bastion or a jump host. Key auth only."""

    host: str
    user: str
    port: int = 22
    # A jump host may use its own key; None means the connection's key.
    key_id: str | None = None

    @property
    def display(self) -> str:
        """"user@host:port", as in `status --json`'s `bastion` field."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"


@dataclass(frozen=True)
class Keepalive:
    """Detection of a dead path takes about interval * (count_max + 1) seconds."""

    interval: float = 5.0
    count_max: int = 2


@dataclass(frozen=True)
class Connection:
    name: str
    database: Database
    bastion: SshEndpoint
    key_id: str
    # Jump hosts, ordered from the workstation outward; the bastion is reached through them.
    jumps: tuple[SshEndpoint, ...] = ()
    local_host: str = LOCAL_HOST
    local_port: int | None = None  # None: pick a free port on first `up`, then saved
    keepalive: Keepalive = field(default_factory=Keepalive)
    # The agent brings the tunnel up whenever it starts (and keeps it there).
    autostart: bool = False

    @property
    def hops(self) -> tuple[SshEndpoint, ...]:
        """Every SSH server in order, the bastion last."""
        return (*self.jumps, self.bastion)


@dataclass(frozen=True)
class Key:
    """An SSH key pair; the private half lives only in the secret store."""

    id: str  # stable, e.g. "k-3f9a1c2b"; the keyring entry is key:<id>
    name: str  # user-chosen; defaults to the first connection's name
    type: KeyType
    public_key: str  # "ssh-ed25519 AAAA..." without comment
    fingerprint: str  # "SHA256:..." exactly as `ssh-keygen -lf` prints it
    created: datetime  # UTC
    comment: str = ""
    source: KeySource = KeySource.KEYRING
    # An OpenSSH user certificate for this key ("ssh-ed25519-cert-v01@openssh.com AAAA..."),
    # public data imported with --certificate; "" when there is none.
    certificate: str = ""

    @property
    def line_comment(self) -> str:
        """The comment its authorized_keys line ends with: `tunnel-tui:<key name>`."""
        return self.comment or f"tunnel-tui:{self.name}"

    @property
    def in_agent(self) -> bool:
        """The private key lives in the user's ssh-agent: not ours to read or rotate."""
        return self.source is KeySource.SSH_AGENT


def secret_name_for_key(key_id: str) -> str:
    return f"key:{key_id}"


def secret_name_for_db_password(connection_name: str) -> str:
    return f"db-password:{connection_name}"
