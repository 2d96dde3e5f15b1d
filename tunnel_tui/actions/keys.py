"""SSH keys: generate, import, delete, list, and the authorized_keys line to install.

Private halves live in the caller's secret store (`Session`); only public lines leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunnel_tui.actions.connections import read_key_file
from tunnel_tui.actions.session import Session
from tunnel_tui.core.errors import KeyImportError, NotFoundError, UsageError
from tunnel_tui.core.model import Key, KeyType
from tunnel_tui.core.secret import Secret


@dataclass(frozen=True)
class IdentityFile:
    """A private key file read for import: its bytes, and what to ask or warn about."""

    path: Path
    data: bytes = field(repr=False)
    encrypted: bool  # a passphrase is needed
    permission_warning: str | None  # OpenSSH's warning about a file others can read


def inspect_identity(path_text: str) -> IdentityFile:
    """Read a key file without decrypting it: UsageError when it is unreadable or not a
    private key (a .pub, a .ppk, garbage); encrypted keys are reported, not refused."""
    from tunnel_tui.core import keys

    path = Path(path_text).expanduser()
    data = read_key_file(path_text)
    try:
        keys.load_private(data)  # cheap for an encrypted key: nothing is decrypted yet
        encrypted = False
    except KeyImportError as exc:
        if exc.field != "passphrase":
            raise
        encrypted = True
    return IdentityFile(path, data, encrypted, keys.file_permission_warning(path))


@dataclass(frozen=True)
class KeyInfo:
    key: Key
    used_by: list[str]  # connection names


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, sorted by name, with the connections using it."""
    cfg = session.catalog().load()
    ordered = sorted(cfg.keys.values(), key=lambda k: (k.name, k.id))
    return [KeyInfo(k, cfg.users_of(k.id)) for k in ordered]


def store_name() -> str:
    """Where our stored keys live for this user: "keyring", or "vault" when no keyring is
    usable (or TUNNEL_TUI_SECRETS=vault). Probes the keyring once (tens of ms); opens,
    unlocks and asks nothing."""
    from tunnel_tui.core import secrets

    chosen = secrets.mode()
    if chosen != "auto":
        return chosen
    return "keyring" if secrets.keyring_status().usable else "vault"


def lives_in(key: Key, store: str) -> str:
    """Where `key`'s private half lives: "ssh-agent", else `store` (see store_name)."""
    return key.source.value if key.in_agent else store


def key_users(session: Session) -> dict[str, list[str]]:
    """Key id -> the connections using it (keys nobody uses are absent)."""
    return {info.key.id: info.used_by for info in list_keys(session) if info.used_by}


def find(session: Session, name: str | None = None, *, key: str | None = None) -> Key:
    """The key of connection `name` (or a key id/name given as `name`), or key `key`."""
    catalog = session.catalog()
    if key is not None:
        if name is not None:
            raise UsageError("give a connection NAME or --key KEY, not both", field="key")
        return catalog.key(key)
    if name is None:
        raise UsageError("which key? give a connection NAME or --key KEY", field="name")
    cfg = catalog.load()
    if name in cfg.connections:
        return cfg.keys[cfg.connections[name].key_id]
    try:
        return catalog.key(name)
    except NotFoundError:
        raise NotFoundError(
            f"no connection or key named {name!r}",
            field="name",
            hint="see tunnel-tui list and tunnel-tui key list",
        ) from None


def authorized_line(session: Session, key: Key, *, restricted: bool = False) -> str:
    """The key's authorized_keys line (comment tunnel-tui:<name>). Restricted: tunnels
    only, to every target that uses the key; refused for a key no connection uses."""
    from tunnel_tui.actions.bastion_setup import authorized_line as line_of

    return line_of(session.catalog(), key, restricted)


def generate(session: Session, name: str, key_type: KeyType | str = KeyType.ED25519) -> Key:
    return session.catalog().generate_key(name, key_type)


def check_name(session: Session, name: str) -> None:
    """UsageError unless `name` is a valid name no key has yet (before asking secrets)."""
    session.catalog().key_name_free(name)


def import_key(
    session: Session, name: str, data: bytes, passphrase: Secret | None = None
) -> Key:
    return session.catalog().import_key(name, data, passphrase)


def delete(session: Session, key_id_or_name: str) -> Key:
    """Delete a key and its private half; refused while a connection uses it."""
    return session.catalog().delete_key(key_id_or_name)
