"""The encrypted vault: where secrets go when no OS keyring is usable (an SSH login,
a headless box). One file, scrypt + AES-256-GCM, passphrase held in memory only.

File layout (all integers big-endian)::

    magic  b"TTVAULT\\0"   8 bytes
    version               1 byte  (1)
    scrypt log2(n), r, p  1 + 4 + 4 bytes
    salt length, salt     1 + 16 bytes
    nonce                 12 bytes
    ciphertext + GCM tag  AES-256-GCM of JSON {"name": "value", ...}

The whole header is the GCM associated data, so a tampered parameter fails to
decrypt like a wrong passphrase would (the same message: GCM cannot tell them apart).
Every write re-reads the file under a lock and uses a fresh nonce.
"""

from __future__ import annotations

import json
import os
import struct
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from tunnel_tui.core import paths
from tunnel_tui.core.atomic import read_private_file, write_private_file
from tunnel_tui.core.errors import ConfigError, SecretStoreError
from tunnel_tui.core.filelock import locked as file_lock
from tunnel_tui.core.secret import Secret

MAGIC = b"TTVAULT\x00"
VERSION = 1
_HEAD = struct.Struct(">8sBBIIB")  # magic, version, log2 n, r, p, salt length
NONCE_BYTES = 12
SALT_BYTES = 16
# ~64 MiB and ~0.2 s here: costly to brute force, quick enough to unlock once.
DEFAULT_LOG2_N, DEFAULT_R, DEFAULT_P = 16, 8, 1
# Refuse absurd parameters from a file before scrypt allocates memory for them.
_MAX_LOG2_N, _MAX_R, _MAX_P = 22, 32, 16
# scrypt needs 128 * r * N bytes: a tampered header (log2 N = 22, r = 32) asked for
# 16 GiB. Anything over 1 GiB (16x the default) is refused before deriving.
MAX_SCRYPT_MEMORY = 1 << 30


@dataclass(frozen=True)
class ScryptParams:
    log2_n: int = DEFAULT_LOG2_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    @property
    def memory(self) -> int:
        """Bytes scrypt allocates for these parameters (128 * r * N)."""
        return 128 * self.r * (1 << self.log2_n)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n // (1 << 20)} MiB"


def _check_cost(path: Path | None, params: ScryptParams) -> None:
    if params.memory > MAX_SCRYPT_MEMORY:
        where = f"{path}" if path is not None else "the vault"
        raise SecretStoreError(
            f"{where} asks for scrypt parameters needing {_gib(params.memory)} of memory "
            f"(N = 2^{params.log2_n}, r = {params.r}); tunnel-tui accepts at most "
            f"{_gib(MAX_SCRYPT_MEMORY)}, so it was not unlocked",
            hint="the file was left untouched; if you did not make it, it may have been "
            "tampered with: restore it from a backup or move it away to start over",
        )


@dataclass(frozen=True)
class _Header:
    params: ScryptParams
    salt: bytes
    nonce: bytes

    def encode(self) -> bytes:
        head = _HEAD.pack(
            MAGIC, VERSION, self.params.log2_n, self.params.r, self.params.p, len(self.salt)
        )
        return head + self.salt + self.nonce


def _parse(path: Path, blob: bytes) -> tuple[_Header, bytes, bytes]:
    """(header, header bytes, ciphertext); SecretStoreError for anything not a vault."""
    damaged = SecretStoreError(
        f"{path} is not a tunnel-tui vault or is damaged",
        hint="it was left untouched; restore it from a backup or move it away to start over",
    )
    if len(blob) < _HEAD.size:
        raise damaged
    magic, version, log2_n, r, p, salt_len = _HEAD.unpack_from(blob)
    if magic != MAGIC:
        raise damaged
    if version != VERSION:
        raise SecretStoreError(
            f"{path} is a vault of format version {version}; this tunnel-tui reads {VERSION}",
            hint="use a newer tunnel-tui",
        )
    if not (1 <= log2_n <= _MAX_LOG2_N and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise damaged
    _check_cost(path, ScryptParams(log2_n, r, p))
    end = _HEAD.size + salt_len + NONCE_BYTES
    if salt_len < 8 or len(blob) < end + 16:
        raise damaged
    salt = blob[_HEAD.size : _HEAD.size + salt_len]
    nonce = blob[_HEAD.size + salt_len : end]
    return _Header(ScryptParams(log2_n, r, p), salt, nonce), blob[:end], blob[end:]


def _derive(passphrase: Secret, salt: bytes, params: ScryptParams) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # only when opened

    _check_cost(None, params)  # every derivation, whatever the caller checked
    kdf = Scrypt(salt=salt, length=32, n=2**params.log2_n, r=params.r, p=params.p)
    return kdf.derive(passphrase.reveal().encode())


class Vault:
    """An unlocked vault. Holds the passphrase (as a Secret) and the derived key, both
    only in memory; the decrypted map is read from disk on every call so that several
    processes (CLI, agent) see each other's writes."""

    backend_name = "vault"

    def __init__(
        self, path: Path, passphrase: Secret, *, key: bytes, salt: bytes, params: ScryptParams
    ) -> None:
        self.path = Path(path)
        self._passphrase = passphrase
        self._key = key
        self._salt = salt
        self._params = params

    def __repr__(self) -> str:
        state = "locked" if self.locked else "unlocked"
        return f"Vault(path={str(self.path)!r}, {state})"

    # -- opening

    @classmethod
    def open(cls, path: Path, passphrase: Secret) -> Vault:
        """Unlock an existing vault: SecretStoreError("wrong vault passphrase") if wrong."""
        path = Path(path)
        blob = _read(path)
        if blob is None:
            raise SecretStoreError(
                f"no vault at {path}",
                hint="create one with tunnel-tui vault unlock (it asks for a new passphrase)",
            )
        header, aad, ciphertext = _parse(path, blob)
        key = _derive(passphrase, header.salt, header.params)
        vault = cls(path, passphrase, key=key, salt=header.salt, params=header.params)
        vault._decrypt(header, aad, ciphertext)  # proves the passphrase
        return vault

    # -- SecretStore

    def get(self, name: str) -> Secret | None:
        value = self._load().get(name)
        return None if value is None else Secret(value)

    def set(self, name: str, value: Secret) -> None:
        if not isinstance(value, Secret):
            raise TypeError("vault values must be Secret")
        with self._lock():
            data = self._load()
            data[name] = value.reveal()
            self._save(data)

    def delete(self, name: str) -> None:
        with self._lock():
            data = self._load()
            if data.pop(name, None) is not None:
                self._save(data)

    def names(self) -> list[str]:
        return sorted(self._load())

    def lock(self) -> None:
        """Drop the passphrase and key from this object; later calls fail clearly."""
        self._passphrase = Secret("")
        self._key = b""

    @property
    def locked(self) -> bool:
        return not self._key

    # -- internals

    def _lock(self) -> AbstractContextManager[None]:
        return file_lock(self.path.with_name(self.path.name + ".lock"))

    def _load(self) -> dict[str, str]:
        if not self._key:
            raise SecretStoreError("the vault is locked", hint="unlock it: tunnel-tui vault unlock")
        blob = _read(self.path)
        if blob is None:
            raise SecretStoreError(
                f"the vault {self.path} has disappeared",
                hint="unlock again with tunnel-tui vault unlock",
            )
        header, aad, ciphertext = _parse(self.path, blob)
        if header.salt != self._salt:  # re-created by another process: derive again
            self._key = _derive(self._passphrase, header.salt, header.params)
            self._salt, self._params = header.salt, header.params
        return self._decrypt(header, aad, ciphertext)

    def _decrypt(self, header: _Header, aad: bytes, ciphertext: bytes) -> dict[str, str]:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(self._key).decrypt(header.nonce, ciphertext, aad)
        except InvalidTag:
            raise SecretStoreError(
                "wrong vault passphrase",
                hint="try again (the vault file is unchanged)",
                field="passphrase",
            ) from None
        data = json.loads(plain.decode())
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise SecretStoreError(f"{self.path}: unexpected vault contents")
        return data

    def _save(self, data: dict[str, str]) -> None:
        _write(self.path, self._params, self._salt, self._key, data)


def _read(path: Path) -> bytes | None:
    try:
        return read_private_file(path)
    except ConfigError as exc:
        raise SecretStoreError(exc.message, hint=exc.hint) from None


def _write(path: Path, params: ScryptParams, salt: bytes, key: bytes, data: dict[str, str]) -> None:
    header = _Header(params, salt, os.urandom(NONCE_BYTES))
    aad = header.encode()
    plain = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        write_private_file(path, aad + AESGCM(key).encrypt(header.nonce, plain, aad))
    except ConfigError as exc:
        raise SecretStoreError(exc.message, hint=exc.hint) from None


def create(path: Path | None, passphrase: Secret, *, params: ScryptParams | None = None) -> Vault:
    """Create an empty vault (refused if one exists: it would lose its secrets)."""
    path = Path(path) if path is not None else paths.vault_path()
    if not passphrase:
        raise SecretStoreError("the vault passphrase cannot be empty", field="passphrase")
    paths.ensure_private_dir(path.parent)
    params = params or ScryptParams()
    salt = os.urandom(SALT_BYTES)
    key = _derive(passphrase, salt, params)
    with file_lock(path.with_name(path.name + ".lock")):
        if _read(path) is not None:
            raise SecretStoreError(
                f"a vault already exists at {path}",
                hint="unlock it with its passphrase; a new vault is created only where none is",
            )
        _write(path, params, salt, key, {})
    return Vault(path, passphrase, key=key, salt=salt, params=params)


def exists(path: Path | None = None) -> bool:
    path = Path(path) if path is not None else paths.vault_path()
    return os.path.lexists(path)
