"""The catalog: connections and keys, the one service the CLI, the TUI and the agent use.

It joins the config file (references) and the secret store (private keys, DB
passwords). Order of work, so that a failure never leaves half a change:
1. check every input and the current config (nothing written yet);
2. write secrets (remembering what was there before);
3. commit the config under its lock, re-checking against the fresh copy;
   if that fails, the secrets written in 2 are put back as they were;
4. only after the config no longer references them, delete secrets.

The secret store is opened lazily: listing and showing never touch the keyring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tunnel_tui.core import config, paths
from tunnel_tui.core.config import Config
from tunnel_tui.core.errors import NotFoundError, SecretStoreError, UsageError
from tunnel_tui.core.model import (
    UNSET as UNSET,  # "leave as it is" (also reached from here)
)
from tunnel_tui.core.model import (
    Connection,
    Database,
    Keepalive,
    Key,
    KeySource,
    KeyType,
    SshEndpoint,
    _Unset,
    secret_name_for_db_password,
    secret_name_for_key,
)
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.urls import check_local_port, parse_db_url, parse_ssh_url, validate_name

if TYPE_CHECKING:
    from tunnel_tui.core.client_keys import ClientKey
    from tunnel_tui.core.keys import KeyMaterial

T = TypeVar("T")
KEY_COMMENT_PREFIX = "tunnel-tui:"


class SecretStore(Protocol):
    """What the catalog needs of `tunnel_tui.core.secrets.SecretStore`."""

    @property
    def backend_name(self) -> str: ...

    def get(self, name: str) -> Secret | None: ...

    def set(self, name: str, value: Secret) -> None: ...

    def delete(self, name: str) -> None: ...


# --- how a connection gets its key ----------------------------------------------


@dataclass(frozen=True)
class GenerateKey:
    key_type: KeyType | str = KeyType.ED25519
    name: str | None = None  # default: the connection's name


@dataclass(frozen=True)
class ImportKey:
    data: bytes = field(repr=False)  # the private key file's bytes (maybe encrypted)
    passphrase: Secret | None = None
    name: str | None = None  # default: the connection's name


@dataclass(frozen=True)
class ReuseKey:
    key_id_or_name: str


@dataclass(frozen=True)
class AgentKeyChoice:
    """A key that stays in the user's ssh-agent: we store its public half only."""

    public_line: str  # "type base64" (for an agent-held certificate: the key it certifies)
    name: str | None = None  # default: the connection's name


KeyChoice = GenerateKey | ImportKey | ReuseKey | AgentKeyChoice


@dataclass(frozen=True)
class AddResult:
    connection: Connection
    key: Key
    generated: bool  # a new key pair was generated: its public key must be installed
    new_key: bool = False  # a new key record was created (generated or imported)


@dataclass(frozen=True)
class RemoveResult:
    connection: Connection
    deleted_keys: list[Key]  # keys nobody uses any more, removed with their secrets
    kept_keys: dict[str, list[str]]  # key id -> connections still using it (shared)
    db_password_deleted: bool
    warnings: list[str] = field(default_factory=list)  # secrets that could not be deleted




class Catalog:
    def __init__(
        self,
        home: Path | None = None,
        secrets: SecretStore | None = None,
        *,
        vault_passphrase: Secret | None = None,
    ) -> None:
        self.home = home or paths.home_dir()
        self._store = secrets
        self._vault_passphrase = vault_passphrase

    def __repr__(self) -> str:
        return f"Catalog(home={str(self.home)!r})"

    # --- the secret store, opened on first need ------------------------------------

    @property
    def store(self) -> SecretStore:
        if self._store is None:
            from tunnel_tui.core import secrets

            store: SecretStore = secrets.open_store(
                self.home, vault_passphrase=self._vault_passphrase
            )
            self._store = store
        return self._store

    # --- reading (config only) -------------------------------------------------------

    def load(self) -> Config:
        return config.load(self.home)

    def connections(self) -> list[Connection]:
        return [c for _, c in sorted(self.load().connections.items())]

    def get(self, name: str) -> Connection:
        return _get(self.load(), name)

    def keys(self) -> list[Key]:
        return sorted(self.load().keys.values(), key=lambda k: (k.name, k.id))

    def key(self, key_id_or_name: str) -> Key:
        return _key(self.load(), key_id_or_name)

    def key_of(self, name: str) -> Key:
        """The key of connection `name`."""
        cfg = self.load()
        return cfg.keys[_get(cfg, name).key_id]

    def users_of(self, key_id: str) -> list[str]:
        cfg = self.load()
        return cfg.users_of(_key(cfg, key_id).id)

    def restrict_targets(self, key_id: str) -> list[tuple[str, int]]:
        """Where a key may forward to, for `permitopen`: on each SSH server it logs in
        to, the next hop (or the database behind the bastion)."""
        cfg = self.load()
        kid = _key(cfg, key_id).id
        targets: list[tuple[str, int]] = []
        for _, conn in sorted(cfg.connections.items()):
            hops = conn.hops
            for i, hop in enumerate(hops):
                if (hop.key_id or conn.key_id) != kid:
                    continue
                nxt = (
                    (hops[i + 1].host, hops[i + 1].port)
                    if i + 1 < len(hops)
                    else (conn.database.host, conn.database.port)
                )
                if nxt not in targets:
                    targets.append(nxt)
        return targets

    def rotations(self) -> dict[str, dict[str, Any]]:
        return self.load().rotations

    # --- reading secrets ---------------------------------------------------------------

    def private_key(self, key_id: str) -> Secret:
        key = self.key(key_id)
        if key.in_agent:
            raise UsageError(
                f"the key {key.name!r} ({key.id}) lives in your ssh-agent: tunnel-tui never "
                "holds its private half", field="key",
                hint="work that needs it runs with your agent (SSH_AUTH_SOCK)",
            )
        value = self.store.get(secret_name_for_key(key.id))
        if value is None:
            raise SecretStoreError(
                f"the private key {key.name!r} ({key.id}) is missing from the "
                f"{self.store.backend_name}",
                hint="import it again (tunnel-tui edit NAME --identity FILE) or generate a "
                "new one (tunnel-tui edit NAME --generate-key)",
            )
        return value

    def client_key(self, key_id: str, agent_socket: str | None = None) -> ClientKey:
        """What the engine authenticates with for `key_id` (core.client_keys): the
        keyring's private key (with its certificate), or the key in the ssh-agent at
        `agent_socket` (None: this process's $SSH_AUTH_SOCK)."""
        from tunnel_tui.core.client_keys import resolve

        return resolve(self.key(key_id), self.private_key, agent_socket)

    def db_password(self, name: str) -> Secret | None:
        self.get(name)
        return self.store.get(secret_name_for_db_password(name))

    # --- connections -----------------------------------------------------------------

    def add(
        self,
        name: str,
        db_url: str | Database,
        ssh_url: str | SshEndpoint,
        *,
        jumps: Sequence[str | SshEndpoint] = (),
        key: KeyChoice = GenerateKey(),  # noqa: B008 - frozen, so sharing is harmless
        local_port: int | None = None,
        db_password: Secret | None = None,
        keepalive: Keepalive | None = None,
        certificate: str | None = None,
        autostart: bool = False,
    ) -> AddResult:
        """`certificate`: an OpenSSH user certificate (`*-cert.pub` text) for the key.
        `autostart`: the agent brings it up whenever it starts."""
        database, bastion, hops = self.check_new(
            name, db_url, ssh_url, jumps=jumps, local_port=local_port
        )
        pending = _PendingKey.resolve(self.load(), key, default_name=name)
        cert_line = _certificate_line(certificate, pending.key)

        def mutate(cfg: Config) -> AddResult:
            _check_name_free(cfg, name)
            key_record = _with_certificate(cfg, pending.commit(cfg), cert_line)
            conn = Connection(
                name=name,
                database=database,
                bastion=bastion,
                key_id=key_record.id,
                jumps=hops,
                local_port=local_port,
                keepalive=keepalive or Keepalive(),
                autostart=autostart,
            )
            _check_port_free(cfg, conn.name, conn.local_port)
            cfg.connections[name] = conn
            return AddResult(conn, key_record, pending.generated, pending.is_new)

        mutate(self.load())  # every check before anything is written
        # An ssh-agent key with no password needs no keyring at all (an SSH login has none).
        needs_store = pending.private_pem is not None or db_password is not None
        txn = _SecretTxn(self.store if needs_store else None)
        pending.store(txn)
        if db_password is not None:
            txn.set(secret_name_for_db_password(name), db_password)
        return self._commit(mutate, txn)

    def add_many(
        self, connections: Sequence[Connection], keys: Mapping[str, KeyChoice]
    ) -> list[AddResult]:
        """Add several connections at once, all or nothing (`import`). Each connection's
        `key_id`, and a jump's, is a reference into `keys`; each choice is resolved once,
        so connections sharing a reference share the key."""
        cfg0 = self.load()
        pendings = {
            ref: _PendingKey.resolve(cfg0, choice, default_name=ref) for ref, choice in keys.items()
        }

        def mutate(cfg: Config) -> list[AddResult]:
            records = {ref: pending.commit(cfg) for ref, pending in pendings.items()}
            results = []
            for conn in connections:
                _check_name_free(cfg, conn.name)
                jumps = tuple(
                    dataclasses.replace(j, key_id=records[j.key_id].id) if j.key_id else j
                    for j in conn.jumps
                )
                new = dataclasses.replace(conn, key_id=records[conn.key_id].id, jumps=jumps)
                _check_port_free(cfg, new.name, new.local_port)
                cfg.connections[new.name] = new
                pending = pendings[conn.key_id]
                results.append(AddResult(new, records[conn.key_id], pending.generated,
                                         pending.is_new))
            return results

        mutate(self.load())  # every check before anything is written
        needs_store = any(p.private_pem is not None for p in pendings.values())
        txn = _SecretTxn(self.store if needs_store else None)
        for pending in pendings.values():
            pending.store(txn)
        return self._commit(mutate, txn)

    def check_new(
        self,
        name: str,
        db_url: str | Database,
        ssh_url: str | SshEndpoint,
        *,
        jumps: Sequence[str | SshEndpoint] = (),
        local_port: int | None = None,
    ) -> tuple[Database, SshEndpoint, tuple[SshEndpoint, ...]]:
        """Every check of `add` that needs no key or keyring (for forms, and for the CLI
        before it asks a passphrase). URLs are parsed; parsed models are taken as they
        are. Raises UsageError with the field."""
        validate_name(name)
        database = _database(db_url)
        bastion = _endpoint(ssh_url, "ssh")
        hops = tuple(_endpoint(j, "jump") for j in jumps)
        check_local_port(local_port)
        cfg = self.load()
        _check_name_free(cfg, name)
        _check_port_free(cfg, name, local_port)
        return database, bastion, hops

    def edit(
        self,
        name: str,
        *,
        db_url: str | Database | None = None,
        ssh_url: str | SshEndpoint | None = None,
        jumps: Sequence[str | SshEndpoint] | None = None,
        key: KeyChoice | None = None,
        local_port: int | None | _Unset = UNSET,
        db_password: Secret | None = None,
        clear_db_password: bool = False,
        keepalive: Keepalive | None = None,
        rename: str | None = None,
        certificate: str | None = None,
        autostart: bool | None = None,
    ) -> AddResult:
        """Change the given parts of a connection; the rest stays. `local_port=None`
        means "pick a free one on next up". `rename` gives it a new name (its DB
        password moves along; the rotation records, keyed by key, are unaffected)."""
        changes: dict[str, Any] = {}
        if db_url is not None:
            changes["database"] = _database(db_url)
        if ssh_url is not None:
            changes["bastion"] = _endpoint(ssh_url, "ssh")
        if jumps is not None:
            changes["jumps"] = tuple(_endpoint(j, "jump") for j in jumps)
        if not isinstance(local_port, _Unset):
            changes["local_port"] = check_local_port(local_port)
        if keepalive is not None:
            changes["keepalive"] = keepalive
        if autostart is not None:
            changes["autostart"] = autostart
        self.get(name)  # NotFoundError before a key is generated or decrypted
        new_name = name
        if rename is not None and rename != name:
            validate_name(rename)
            _check_name_free(self.load(), rename)
            new_name = rename
            changes["name"] = rename
        pending = _PendingKey.resolve(self.load(), key, default_name=name) if key else None
        cert_key = pending.key if pending is not None else self.key_of(name)
        cert_line = _certificate_line(certificate, cert_key)

        def mutate(cfg: Config) -> AddResult:
            conn = _get(cfg, name)
            if new_name != name:
                _check_name_free(cfg, new_name)
            new = dataclasses.replace(conn, **changes)
            key_record = cfg.keys[new.key_id]
            if pending is not None:
                key_record = pending.commit(cfg)
                new = dataclasses.replace(new, key_id=key_record.id)
            key_record = _with_certificate(cfg, key_record, cert_line)
            _check_port_free(cfg, name, new.local_port)
            del cfg.connections[name]
            cfg.connections[new_name] = new
            return AddResult(
                new,
                key_record,
                pending.generated if pending else False,
                pending.is_new if pending else False,
            )

        mutate(self.load())
        renamed = new_name != name
        needs_store = (
            (pending is not None and pending.private_pem is not None)
            or db_password is not None
            or clear_db_password
        )
        txn = _SecretTxn(self.store) if needs_store or renamed else _SecretTxn(None)
        if pending is not None:
            pending.store(txn)
        clear = clear_db_password and db_password is None
        if db_password is None and renamed and not clear:  # the password moves along
            if getattr(self.store, "write_only", False):  # the vault the agent holds
                txn.copy(secret_name_for_db_password(name), secret_name_for_db_password(new_name))
            else:
                db_password = self.store.get(secret_name_for_db_password(name))
        if db_password is not None:
            txn.set(secret_name_for_db_password(new_name), db_password)
        result = self._commit(mutate, txn)
        stale = ({name} if renamed else set()) | ({name, new_name} if clear else set())
        for gone in sorted(stale):
            _delete_quietly(self.store, secret_name_for_db_password(gone), [])
        return result

    def remove(self, name: str) -> RemoveResult:
        self.get(name)
        store = self.store  # no keyring, no removal: never leave orphaned secrets silently

        def mutate(cfg: Config) -> tuple[Connection, list[Key], dict[str, list[str]]]:
            removed = cfg.connections.pop(name, None)
            if removed is None:
                raise NotFoundError(f"no connection named {name!r}", field="name")
            deleted: list[Key] = []
            kept: dict[str, list[str]] = {}
            for kid in _key_ids_of(removed):
                users = cfg.users_of(kid)
                if users:
                    kept[kid] = users
                elif kid in cfg.keys:
                    deleted.append(cfg.keys.pop(kid))
                    deleted.extend(_drop_rotation(cfg, kid))
            return removed, deleted, kept

        removed, deleted, kept = self._commit(mutate, _SecretTxn(None))
        warnings: list[str] = []
        for key in deleted:
            _delete_quietly(store, secret_name_for_key(key.id), warnings)
        had_password = _delete_quietly(store, secret_name_for_db_password(name), warnings)
        return RemoveResult(removed, deleted, kept, had_password, warnings)

    def set_local_port(self, name: str, port: int | None) -> Connection:
        check_local_port(port)

        def mutate(cfg: Config) -> Connection:
            new = dataclasses.replace(_get(cfg, name), local_port=port)
            _check_port_free(cfg, new.name, new.local_port)
            cfg.connections[name] = new
            return new

        return self._commit(mutate, _SecretTxn(None))

    # --- keys ------------------------------------------------------------------------

    def generate_key(self, name: str, key_type: KeyType | str = KeyType.ED25519) -> Key:
        return self._new_key(name, GenerateKey(key_type, name))

    def import_key(self, name: str, data: bytes, passphrase: Secret | None = None) -> Key:
        return self._new_key(name, ImportKey(data, passphrase, name))

    def add_key_material(
        self, name: str, material: KeyMaterial, *, key_id: str | None = None
    ) -> Key:
        """Store key material made elsewhere (rotation). Repeating it with the same
        `key_id` and material is a no-op that returns the stored key."""
        cfg = self.load()
        if key_id is not None and key_id in cfg.keys:
            existing = cfg.keys[key_id]
            if existing.fingerprint != material.fingerprint:
                raise UsageError(f"key id {key_id} already holds another key", field="key")
            if self.store.get(secret_name_for_key(key_id)) is None:
                self.store.set(secret_name_for_key(key_id), material.private_pem)
            return existing
        pending = _PendingKey.from_material(cfg, material, name, key_id=key_id)
        return self._commit_new_key(pending)

    def key_name_free(self, name: str) -> None:
        """UsageError unless `name` is a valid name no key has yet."""
        validate_name(name, field="key.name")
        if any(k.name == name for k in self.load().keys.values()):
            raise UsageError(f"a key named {name!r} already exists", field="key.name")

    def _new_key(self, name: str, choice: GenerateKey | ImportKey) -> Key:
        self.key_name_free(name)
        cfg = self.load()
        pending = _PendingKey.resolve(cfg, choice, default_name=name)
        if not pending.is_new:
            raise UsageError(
                f"this key is already stored as {pending.key.name!r} ({pending.key.id})",
                field="key",
                hint=f"use it with --use-key {pending.key.name}",
            )
        return self._commit_new_key(pending)

    def _commit_new_key(self, pending: _PendingKey) -> Key:
        txn = _SecretTxn(self.store)
        pending.store(txn)
        return self._commit(pending.commit, txn)

    def delete_key(self, key_id_or_name: str) -> Key:
        key = self.key(key_id_or_name)

        def mutate(cfg: Config) -> Key:
            users = cfg.users_of(key.id)
            if users:
                raise UsageError(
                    f"key {key.name!r} ({key.id}) is used by: {', '.join(users)}",
                    field="key",
                    hint="give those connections another key first "
                    "(tunnel-tui edit NAME --generate-key) or remove them",
                )
            return cfg.keys.pop(key.id)

        mutate(self.load())
        store = self.store
        removed = self._commit(mutate, _SecretTxn(None))
        warnings: list[str] = []
        _delete_quietly(store, secret_name_for_key(removed.id), warnings)
        if warnings:
            raise SecretStoreError(warnings[0])
        return removed

    def replace_key(self, old_key_id: str, new_key_id: str) -> list[str]:
        """Every connection (and jump) using the old key now uses the new one; returns
        their names. The old key itself stays until deleted."""

        def mutate(cfg: Config) -> list[str]:
            old = _key(cfg, old_key_id).id
            new = _key(cfg, new_key_id).id
            names = cfg.users_of(old)
            for name in names:
                conn = cfg.connections[name]
                cfg.connections[name] = dataclasses.replace(
                    conn,
                    key_id=new if conn.key_id == old else conn.key_id,
                    jumps=tuple(
                        dataclasses.replace(j, key_id=new) if j.key_id == old else j
                        for j in conn.jumps
                    ),
                )
            return names

        return self._commit(mutate, _SecretTxn(None))

    # --- rotations (records owned by core.rotation_record, keyed by old key id) -------

    def save_rotation(self, key_id: str, record: dict[str, Any] | None) -> None:
        def mutate(cfg: Config) -> None:
            if record is None:
                cfg.rotations.pop(key_id, None)
            else:
                cfg.rotations[key_id] = record

        self._commit(mutate, _SecretTxn(None))

    # --- plumbing ------------------------------------------------------------------

    def _commit(self, mutate: Callable[[Config], T], txn: _SecretTxn) -> T:
        try:
            with config.update(self.home) as cfg:
                return mutate(cfg)
        except BaseException:
            txn.rollback()
            raise


# --- helpers -----------------------------------------------------------------------


def _database(value: str | Database) -> Database:
    return value if isinstance(value, Database) else parse_db_url(value)


def _endpoint(value: str | SshEndpoint, field: str) -> SshEndpoint:
    if isinstance(value, SshEndpoint):
        return value
    return parse_ssh_url(value, field=field)


def connection_named(cfg: Config, name: str) -> Connection:
    """Connection `name` of `cfg`, or NotFoundError with the hint to list them."""
    return _get(cfg, name)


def _get(cfg: Config, name: str) -> Connection:
    try:
        return cfg.connections[name]
    except KeyError:
        raise NotFoundError(
            f"no connection named {name!r}", field="name", hint="see tunnel-tui list"
        ) from None


def _key(cfg: Config, key_id_or_name: str) -> Key:
    if key_id_or_name in cfg.keys:
        return cfg.keys[key_id_or_name]
    for key in cfg.keys.values():
        if key.name == key_id_or_name:
            return key
    raise NotFoundError(
        f"no key with id or name {key_id_or_name!r}", field="key", hint="see tunnel-tui key list"
    )


def _certificate_line(certificate: str | None, key: Key) -> str | None:
    """The certificate as stored ("type base64"), checked to belong to `key`."""
    if certificate is None:
        return None
    from tunnel_tui.core.certificates import check_user_certificate_for, parse_certificate

    cert = parse_certificate(certificate)
    check_user_certificate_for(cert, key.public_key)
    return cert.line


def _with_certificate(cfg: Config, key: Key, cert_line: str | None) -> Key:
    if cert_line is None or key.certificate == cert_line:
        return key
    key = dataclasses.replace(key, certificate=cert_line)
    cfg.keys[key.id] = key
    return key


def _check_name_free(cfg: Config, name: str) -> None:
    if name in cfg.connections:
        raise UsageError(
            f"a connection named {name!r} already exists",
            field="name",
            hint=f"choose another name, or change it with: tunnel-tui edit {name}",
        )


def _key_ids_of(conn: Connection) -> list[str]:
    ids = [conn.key_id]
    ids += [j.key_id for j in conn.jumps if j.key_id and j.key_id not in ids]
    return ids


def _check_port_free(cfg: Config, name: str, port: int | None) -> None:
    if port is None:
        return
    for other in cfg.connections.values():
        if other.name != name and other.local_port == port:
            raise UsageError(
                f"local port {port} is already used by connection {other.name!r}; "
                f"{name!r} needs its own",
                field="local_port",
                hint="choose another --local-port, or leave it out to pick a free one",
            )


def _unique_key_name(cfg: Config, base: str) -> str:
    taken = {k.name for k in cfg.keys.values()}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _new_key_id(cfg: Config) -> str:
    import secrets as _random  # here: `up` reads the catalog and never makes a key

    while True:
        kid = "k-" + _random.token_hex(4)
        if kid not in cfg.keys:
            return kid


def rotation_key_of(cfg: Config, key_id: str) -> Key | None:
    """The new key of an unfinished rotation of `key_id`, if nothing uses it yet."""
    record = cfg.rotations.get(key_id) or {}
    new_id = record.get("new_key_id")
    if not isinstance(new_id, str) or new_id not in cfg.keys or cfg.users_of(new_id):
        return None
    return cfg.keys[new_id]


def _drop_rotation(cfg: Config, key_id: str) -> list[Key]:
    """A key going away takes its rotation record along, and the rotation's new key
    when nothing uses it (a rotation interrupted before its switch step)."""
    gone: list[Key] = []
    new_key = rotation_key_of(cfg, key_id)
    cfg.rotations.pop(key_id, None)
    if new_key is not None:
        gone.append(cfg.keys.pop(new_key.id))
    # Past its switch step the record is filed under the old key: it goes too, with the
    # old key if the rotation had not deleted it yet.
    for old_id, record in list(cfg.rotations.items()):
        if record.get("new_key_id") == key_id:
            del cfg.rotations[old_id]
            if old_id in cfg.keys and not cfg.users_of(old_id):
                gone.append(cfg.keys.pop(old_id))
    return gone


def secret_exists(store: SecretStore, name: str) -> bool:
    """Whether an entry exists; a write-only store (the vault the agent holds, which
    never hands a secret back) answers this without `get`."""
    exists = getattr(store, "exists", None)
    return bool(exists(name)) if exists is not None else store.get(name) is not None


def _delete_quietly(store: SecretStore, name: str, warnings: list[str]) -> bool:
    """Delete a secret; True if it existed. Failures become warnings: the config no
    longer points at it, so an orphaned entry is harmless but worth saying."""
    try:
        existed = secret_exists(store, name)
        if existed:
            store.delete(name)
        return existed
    except SecretStoreError as exc:
        warnings.append(f"could not delete {name} from the {store.backend_name}: {exc.message}")
        return False


class _SecretTxn:
    """Secrets written before the config commit, put back as they were on failure."""

    def __init__(self, store: SecretStore | None) -> None:
        self._store = store
        self._before: list[tuple[str, Secret | None]] = []

    def set(self, name: str, value: Secret) -> None:
        assert self._store is not None
        previous: Secret | None = None
        if secret_exists(self._store, name):
            if getattr(self._store, "write_only", False):
                # The vault the agent holds never hands the old value back (`edit
                # --db-password-stdin` from an SSH login): on failure the new one stays.
                self._store.set(name, value)
                return
            previous = self._store.get(name)
        self._before.append((name, previous))
        self._store.set(name, value)

    def copy(self, name: str, to: str) -> None:
        """Copy an entry inside a write-only store (it never hands the value out)."""
        assert self._store is not None
        if not secret_exists(self._store, to):
            self._before.append((to, None))  # rollback: delete the copy
        self._store.copy(name, to)  # type: ignore[attr-defined]

    def rollback(self) -> None:
        if self._store is None:
            return
        for name, previous in reversed(self._before):
            try:
                if previous is None:
                    self._store.delete(name)
                else:
                    self._store.set(name, previous)
            except SecretStoreError:
                pass  # the original error matters more; the entry is unreferenced
        self._before.clear()


@dataclass
class _PendingKey:
    """The key a change will use: an existing record, or a new one to store."""

    key: Key
    is_new: bool
    generated: bool
    private_pem: Secret | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, cfg: Config, choice: KeyChoice, *, default_name: str) -> _PendingKey:
        if isinstance(choice, ReuseKey):
            return cls(_key(cfg, choice.key_id_or_name), is_new=False, generated=False)
        from tunnel_tui.core import keys

        if isinstance(choice, AgentKeyChoice):
            return cls.in_agent(cfg, choice, default_name)

        if isinstance(choice, GenerateKey):
            try:
                key_type = KeyType(choice.key_type)
            except ValueError:
                raise UsageError(
                    f"unknown key type {choice.key_type!r}",
                    field="key_type",
                    hint="ed25519 (default) or rsa",
                ) from None
            material = keys.generate(key_type)
            pending = cls.from_material(cfg, material, choice.name or default_name)
            pending.generated = True
            return pending
        material = keys.load_private(choice.data, choice.passphrase)
        for existing in cfg.keys.values():
            if existing.fingerprint == material.fingerprint:
                return cls(existing, is_new=False, generated=False)
        return cls.from_material(cfg, material, choice.name or default_name)

    @classmethod
    def from_material(
        cls, cfg: Config, material: KeyMaterial, name: str, *, key_id: str | None = None
    ) -> _PendingKey:
        key_name = _unique_key_name(cfg, name)
        key = Key(
            id=key_id or _new_key_id(cfg),
            name=key_name,
            type=material.key_type,
            public_key=material.public_line,
            fingerprint=material.fingerprint,
            created=datetime.now(UTC).replace(microsecond=0),
            comment=KEY_COMMENT_PREFIX + key_name,
        )
        return cls(key, is_new=True, generated=False, private_pem=material.private_pem)

    @classmethod
    def in_agent(cls, cfg: Config, choice: AgentKeyChoice, default_name: str) -> _PendingKey:
        from tunnel_tui.core import keys

        key_type, _ = keys.parse_public_line(choice.public_line)
        public = keys.public_key_only(choice.public_line)
        fingerprint = keys.fingerprint(public)
        for existing in cfg.keys.values():
            if existing.fingerprint == fingerprint:
                return cls(existing, is_new=False, generated=False)
        key_name = _unique_key_name(cfg, choice.name or default_name)
        key = Key(
            id=_new_key_id(cfg), name=key_name, type=key_type, public_key=public,
            fingerprint=fingerprint, created=datetime.now(UTC).replace(microsecond=0),
            comment=KEY_COMMENT_PREFIX + key_name, source=KeySource.SSH_AGENT,
        )
        return cls(key, is_new=True, generated=False)

    def store(self, txn: _SecretTxn) -> None:
        if self.is_new and self.private_pem is not None:
            txn.set(secret_name_for_key(self.key.id), self.private_pem)

    def commit(self, cfg: Config) -> Key:
        if not self.is_new:
            return _key(cfg, self.key.id)  # still there (NotFoundError otherwise)
        if self.key.id in cfg.keys:
            raise UsageError(f"key id {self.key.id} was taken meanwhile; try again")
        if any(k.name == self.key.name for k in cfg.keys.values()):
            # Someone took the name since we checked: keep ours unique.
            name = _unique_key_name(cfg, self.key.name)
            self.key = dataclasses.replace(self.key, name=name, comment=KEY_COMMENT_PREFIX + name)
        cfg.keys[self.key.id] = self.key
        return self.key
