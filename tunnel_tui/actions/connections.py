"""Connections: add, edit, remove (with the bastion's line), list, show.

The CLI and the TUI both call these with parsed models (`ConnectionInput`: a Database and
SSH endpoints, never URL strings to parse again) and render the typed results. The key a
connection gets is one `KeyInput`, mapped to the catalog's choice in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunnel_tui.actions.session import Session
from tunnel_tui.core.errors import NotFoundError, UsageError
from tunnel_tui.core.model import UNSET, Connection, Database, Key, KeyType, SshEndpoint
from tunnel_tui.core.secret import Secret

if TYPE_CHECKING:  # the app imports this module at start: the catalog loads when used
    from tunnel_tui.actions import bastion_cleanup
    from tunnel_tui.core.catalog import AddResult, KeyChoice, RemoveResult
    from tunnel_tui.core.config import Config

# -- the key a connection gets -------------------------------------------------------


class KeySource(StrEnum):
    GENERATE = "generate"
    PASTE = "paste"  # a PEM pasted into the form
    FILE = "file"  # a private key file (copied, never referenced)
    REUSE = "reuse"  # a stored key, by id or name
    AGENT = "ssh-agent"  # the key stays in the user's ssh-agent (public half stored)


@dataclass(frozen=True)
class KeyInput:
    source: KeySource = KeySource.GENERATE
    key_type: KeyType | str = KeyType.ED25519  # generate
    pem: Secret | None = field(default=None, repr=False)  # paste
    path: str = ""  # file
    data: bytes | None = field(default=None, repr=False)  # file, already read by the caller
    reuse: str = ""  # reuse: key id or name
    agent_public_line: str = ""  # ssh-agent: "type base64" of the key chosen
    passphrase: Secret | None = field(default=None, repr=False)  # paste, file
    name: str | None = None  # a new key's name (default: the connection's)


def key_choice(key: KeyInput) -> KeyChoice:
    """The one mapping from what the user chose to what the catalog does."""
    from tunnel_tui.core.catalog import AgentKeyChoice, GenerateKey, ImportKey, ReuseKey

    if key.source is KeySource.GENERATE:
        return GenerateKey(key.key_type, key.name)
    if key.source is KeySource.REUSE:
        if not key.reuse:
            raise UsageError("choose a key to reuse", field="key")
        return ReuseKey(key.reuse)
    if key.source is KeySource.AGENT:
        if not key.agent_public_line:
            raise UsageError("choose a key from the ssh-agent", field="key")
        return AgentKeyChoice(key.agent_public_line, key.name)
    if key.source is KeySource.PASTE:
        data = (key.pem.reveal() if key.pem else "").encode()
    elif key.data is not None:
        data = key.data
    else:
        data = read_key_file(key.path)
    return ImportKey(data, key.passphrase, key.name)


def read_key_file(path_text: str) -> bytes:
    path = Path(path_text).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the identity file {str(path)!r}: {exc.strerror}", field="identity"
        ) from None


# -- add and edit --------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionInput:
    """A whole connection as the user describes it (the form, or `add`'s flags)."""

    name: str
    database: Database
    bastion: SshEndpoint
    jumps: tuple[SshEndpoint, ...] | None = None  # None: none (add); unchanged (save)
    local_port: int | None = None  # None: picked free on first up (add); unchanged (save)
    key: KeyInput | None = None  # None: generate (add); keep the current key (save)
    password: Secret | None = field(default=None, repr=False)  # None: none / unchanged
    autostart: bool | None = None  # the agent brings it up when it starts; None: no (add),
    # unchanged (save)
    certificate: str | None = None  # an OpenSSH user certificate (*-cert.pub) for the key


@dataclass(frozen=True)
class ConnectionChanges:
    """What `edit` changes; None (or UNSET for the local port) leaves a part as it is."""

    database: Database | None = None
    bastion: SshEndpoint | None = None
    jumps: tuple[SshEndpoint, ...] | None = None
    local_port: Any = UNSET  # int, None (auto) or UNSET
    key: KeyInput | None = None
    password: Secret | None = field(default=None, repr=False)
    clear_password: bool = False
    rename: str | None = None
    autostart: bool | None = None
    certificate: str | None = None  # an OpenSSH user certificate (*-cert.pub) for the key


@dataclass(frozen=True)
class SaveResult:
    connection: Connection
    key: Key
    generated: bool  # a new key pair: its public line must go to the bastion
    new_key: bool  # a new key record (generated or imported)
    live_state: str | None = None  # edit: the tunnel's state in the agent, if not down
    unused_key: Key | None = None  # edit: the key the connection used before, now unused
    renamed_from: str | None = None

    @classmethod
    def of(cls, result: AddResult, **extra: Any) -> SaveResult:
        return cls(result.connection, result.key, result.generated, result.new_key, **extra)


def check_new(session: Session, spec: ConnectionInput) -> None:
    """Every check of `add` that needs no key or keyring: a taken name is reported
    before a passphrase is asked."""
    session.catalog().check_new(
        spec.name, spec.database, spec.bastion, jumps=spec.jumps or (), local_port=spec.local_port
    )


def add(session: Session, spec: ConnectionInput) -> SaveResult:
    result = session.catalog().add(
        spec.name,
        spec.database,
        spec.bastion,
        jumps=spec.jumps or (),
        key=key_choice(spec.key or KeyInput()),
        local_port=spec.local_port,
        db_password=spec.password,
        autostart=bool(spec.autostart),
        certificate=spec.certificate,
    )
    return SaveResult.of(result)


def check_edit(session: Session, name: str, changes: ConnectionChanges) -> str | None:
    """The checks of `edit` that need no key or keyring: the connection exists, and a
    connection whose tunnel is live in the agent (which knows it by name) is not renamed.
    Returns the tunnel's live state (None: down, or no agent)."""
    session.catalog().get(name)  # NotFoundError first
    live = live_state(session, name)
    if live and changes.rename and changes.rename != name:
        raise UsageError(
            f"cannot rename {name} while its tunnel is {live} in the agent",
            field="name",
            hint=f"take it down first: tunnel-tui down {name}",
        )
    return live


def edit(session: Session, name: str, changes: ConnectionChanges) -> SaveResult:
    """Change the given parts; the rest stays. Renaming a live tunnel is refused; other
    changes to a live tunnel apply after `down` and `up` (`live_state` says so)."""
    catalog = session.catalog()
    old_key_id = catalog.get(name).key_id
    live = check_edit(session, name, changes)
    result = catalog.edit(
        name,
        db_url=changes.database,
        ssh_url=changes.bastion,
        jumps=changes.jumps,
        key=key_choice(changes.key) if changes.key is not None else None,
        local_port=changes.local_port,
        db_password=changes.password,
        clear_db_password=changes.clear_password,
        rename=changes.rename,
        autostart=changes.autostart,
        certificate=changes.certificate,
    )
    unused = None
    if old_key_id != result.key.id and not catalog.users_of(old_key_id):
        unused = catalog.key(old_key_id)
    renamed = name if result.connection.name != name else None
    return SaveResult.of(result, live_state=live, unused_key=unused, renamed_from=renamed)


def save(
    session: Session, spec: ConnectionInput, *, original_name: str | None = None
) -> SaveResult:
    """The form's Save: add a new connection, or replace every field of `original_name`
    (a key choice that reuses the current key keeps it)."""
    if original_name is None:
        return add(session, spec)
    current = session.catalog().get(original_name)
    key = spec.key
    if key is not None and key.source is KeySource.REUSE and key.reuse == current.key_id:
        key = None
    return edit(
        session,
        original_name,
        ConnectionChanges(
            database=spec.database,
            bastion=spec.bastion,
            jumps=spec.jumps,
            local_port=UNSET if spec.local_port is None else spec.local_port,
            key=key,
            password=spec.password,
            rename=spec.name if spec.name != original_name else None,
            autostart=spec.autostart,
        ),
    )


def live_state(session: Session, name: str) -> str | None:
    """The agent's state of tunnel `name` when it is not down (None: down, or no agent)."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    try:
        (status,) = AgentClient(session.home).status(name)
    except (AgentNotRunning, NotFoundError):
        return None
    return None if status.state.value == "down" else status.state.value


# -- remove --------------------------------------------------------------------------


@dataclass(frozen=True)
class RemovalPlan:
    """What removing a connection would do on the bastions: the keys that go away with
    it and the servers whose authorized_keys hold their lines."""

    connection: Connection
    lines: list[tuple[Key, list[bastion_cleanup.Server]]]

    @property
    def servers(self) -> list[bastion_cleanup.Server]:
        return list({s.display: s for _, each in self.lines for s in each}.values())

    @property
    def where(self) -> str:
        """"~tunnel/.ssh/authorized_keys on bastion:22", for the question to ask."""
        return ", ".join(s.file for s in self.servers)


@dataclass(frozen=True)
class RemoveOutcome:
    name: str
    result: RemoveResult
    plan: RemovalPlan
    remote: list[bastion_cleanup.Outcome]  # one per (key, server) tried
    tunnel_was: str | None  # the tunnel's state before it was taken down, or None
    warnings: list[str]

    def remote_outcome(
        self, key: Key, server: bastion_cleanup.Server
    ) -> bastion_cleanup.Outcome | None:
        return next(
            (o for o in self.remote if o.key.id == key.id and o.server.display == server.display),
            None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deleted_keys": [k.id for k in self.result.deleted_keys],
            "kept_keys": self.result.kept_keys,
            "db_password_deleted": self.result.db_password_deleted,
            "remote": [o.to_json() for o in self.remote],
            "tunnel_was": self.tunnel_was,
            "warnings": self.warnings,
        }


def plan_remove(session: Session, name: str) -> RemovalPlan:
    from tunnel_tui.actions import bastion_cleanup

    catalog = session.catalog()
    conn = catalog.get(name)
    return RemovalPlan(conn, bastion_cleanup.lines_going_away(catalog, conn))


def remove(session: Session, name: str, *, clean_bastion: bool) -> RemoveOutcome:
    """Take a live tunnel down, remove the key's line from the bastions when asked
    (logging in with the key one last time; failures become warnings), then remove the
    connection and the secrets nobody else uses. Blocking: run it in a thread."""
    from tunnel_tui.actions import bastion_cleanup

    catalog = session.catalog()
    plan = plan_remove(session, name)
    took_down = _take_down(session, name)
    outcomes: list[bastion_cleanup.Outcome] = []
    if clean_bastion and plan.servers:
        from tunnel_tui.actions.agent_keys import agent_keys

        # The vault only the agent holds: the agent logs in (it never hands a key out).
        in_agent = agent_keys(catalog, session.home)
        work = bastion_cleanup.plan(catalog, plan.connection, keys=in_agent)
        outcomes = bastion_cleanup.remove_lines(work, home=session.home)
    result = catalog.remove(name)
    warnings = list(result.warnings)
    for outcome in outcomes:
        if outcome.error:
            warnings.append(
                f"could not remove the line of key {outcome.key.name} from "
                f"{outcome.server.file}: {outcome.error}"
            )
    return RemoveOutcome(name, result, plan, outcomes, took_down, warnings)


def _take_down(session: Session, name: str) -> str | None:
    """A live tunnel of a removed connection would keep its port and SSH session:
    the agent takes it down first. Returns the state it was in, or None."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    client = AgentClient(session.home)
    try:
        (status,) = client.status(name)
        if status.state.value == "down":
            return None
        client.down(name)
    except (AgentNotRunning, NotFoundError):
        return None
    return status.state.value


# -- list and show ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionDetail:
    """One connection with what the user needs around it."""

    connection: Connection
    key: Key | None
    key_users: list[str] = field(default_factory=list)  # every connection using the key
    host_key_fingerprints: list[str] = field(default_factory=list)  # the bastion's, trusted


@dataclass(frozen=True)
class ConnectionList:
    connections: list[Connection]  # sorted by name
    keys: dict[str, Key]  # by id

    def key_of(self, conn: Connection) -> Key | None:
        return self.keys.get(conn.key_id)


def list_connections(session: Session, config: Config | None = None) -> ConnectionList:
    cfg = config if config is not None else session.catalog().load()
    return ConnectionList([c for _, c in sorted(cfg.connections.items())], dict(cfg.keys))


def show(session: Session, name: str, config: Config | None = None) -> ConnectionDetail:
    """A connection, its key, who shares the key, and the bastion's trusted host keys."""
    from tunnel_tui.core import keys
    from tunnel_tui.core.catalog import connection_named
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.core.paths import known_hosts_path

    cfg = config if config is not None else session.catalog().load()
    conn = connection_named(cfg, name)
    known = KnownHosts(known_hosts_path(session.home))
    lines = known.trusted_keys(conn.bastion.host, conn.bastion.port)
    return ConnectionDetail(
        conn,
        cfg.keys.get(conn.key_id),
        cfg.users_of(conn.key_id),
        [keys.fingerprint(line) for line in lines],
    )
