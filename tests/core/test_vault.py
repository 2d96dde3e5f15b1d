"""The encrypted vault: what a user relies on when no keyring works."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tunnel_tui.core import paths, vault
from tunnel_tui.core.errors import SecretStoreError
from tunnel_tui.core.secret import Secret

FAST = vault.ScryptParams(log2_n=10, r=8, p=1)  # tests only: the default costs ~0.2 s
PASS = Secret("vault pass 123")
CANARY = "canary-7f3b9e1d2c"


def _new(path: Path | None = None) -> vault.Vault:
    return vault.create(path or paths.vault_path(), PASS, params=FAST)


def test_round_trip_and_reopen() -> None:
    v = _new()
    v.set("db-password:prod", Secret(CANARY))
    v.set("key:k1", Secret("x" * 3000))
    again = vault.Vault.open(paths.vault_path(), PASS)
    assert again.get("db-password:prod") == Secret(CANARY)
    assert again.get("key:k1") == Secret("x" * 3000)
    assert again.get("missing") is None
    again.delete("key:k1")
    again.delete("key:k1")  # deleting nothing is fine
    assert v.get("key:k1") is None  # the first handle sees the other's write
    assert v.names() == ["db-password:prod"]


def test_file_is_private_encrypted_and_self_describing() -> None:
    v = _new()
    v.set("db-password:prod", Secret(CANARY))
    path = paths.vault_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    blob = path.read_bytes()
    assert blob.startswith(vault.MAGIC)
    assert CANARY.encode() not in blob and b"db-password" not in blob
    # the scrypt parameters are in the header: opening needs nothing else
    assert blob[9] == FAST.log2_n


def test_umask_does_not_loosen_the_file() -> None:
    code = (
        "import os; os.umask(0); from tunnel_tui.core import vault; "
        "from tunnel_tui.core.secret import Secret; "
        "v = vault.create(None, Secret('p4ssphrase'), params=vault.ScryptParams(10, 8, 1)); "
        "v.set('a', Secret('b'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert stat.S_IMODE(paths.vault_path().stat().st_mode) == 0o600


def test_wrong_passphrase() -> None:
    _new().set("a", Secret(CANARY))
    before = paths.vault_path().read_bytes()
    with pytest.raises(SecretStoreError) as info:
        vault.Vault.open(paths.vault_path(), Secret("not it"))
    assert info.value.message == "wrong vault passphrase"
    assert paths.vault_path().read_bytes() == before


def test_tampered_header_is_refused() -> None:
    """The header is GCM associated data: changing a parameter breaks decryption."""
    _new().set("a", Secret(CANARY))
    path = paths.vault_path()
    blob = bytearray(path.read_bytes())
    blob[13] ^= 1  # a bit of r
    path.write_bytes(bytes(blob))
    with pytest.raises(SecretStoreError):
        vault.Vault.open(path, PASS)


def test_not_a_vault_is_left_untouched() -> None:
    path = paths.vault_path()
    path.write_bytes(b"hello, not a vault")
    with pytest.raises(SecretStoreError, match="not a tunnel-tui vault"):
        vault.Vault.open(path, PASS)
    with pytest.raises(SecretStoreError, match="already exists"):
        vault.create(path, PASS, params=FAST)
    assert path.read_bytes() == b"hello, not a vault"


def test_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "target"
    _new(elsewhere)
    paths.vault_path().symlink_to(elsewhere)
    with pytest.raises(SecretStoreError, match="symbolic link"):
        vault.Vault.open(paths.vault_path(), PASS)


def test_empty_passphrase_refused() -> None:
    with pytest.raises(SecretStoreError):
        vault.create(None, Secret(""), params=FAST)
    assert not vault.exists()


def test_no_secret_in_repr_or_errors() -> None:
    v = _new()
    v.set("db-password:prod", Secret(CANARY))
    assert PASS.reveal() not in repr(v) and CANARY not in repr(v)
    assert PASS.reveal() not in repr(vars(v))
    with pytest.raises(SecretStoreError) as info:
        vault.Vault.open(paths.vault_path(), Secret(CANARY))
    assert CANARY not in str(info.value) and CANARY not in (info.value.hint or "")


def test_concurrent_writers_lose_nothing() -> None:
    """Two processes writing different names at once: every write survives."""
    _new()
    code = (
        "import sys; from tunnel_tui.core import vault; from tunnel_tui.core.secret import Secret\n"
        "v = vault.Vault.open(vault.paths.vault_path(), Secret(sys.argv[1]))\n"
        "for i in range(15): v.set(f'{sys.argv[2]}-{i}', Secret(str(i)))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, PASS.reveal(), tag]) for tag in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(60) == 0
    names = vault.Vault.open(paths.vault_path(), PASS).names()
    assert len(names) == 30


def test_json_inside_is_a_flat_map() -> None:
    """Decrypting by hand with the documented layout gives name -> value JSON."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    _new().set("a", Secret(CANARY))
    blob = paths.vault_path().read_bytes()
    log2_n, r, p, salt_len = (
        blob[9],
        int.from_bytes(blob[10:14]),
        int.from_bytes(blob[14:18]),
        blob[18],
    )
    salt = blob[19 : 19 + salt_len]
    nonce_end = 19 + salt_len + 12
    key = Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(PASS.reveal().encode())
    plain = AESGCM(key).decrypt(blob[19 + salt_len : nonce_end], blob[nonce_end:], blob[:nonce_end])
    assert json.loads(plain) == {"a": CANARY}
    assert os.environ.get("TUNNEL_TUI_HOME")  # the isolated home, never the user's


def test_lock_forgets_the_passphrase() -> None:
    v = _new()
    v.set("a", Secret(CANARY))
    v.lock()
    assert v.locked and "locked" in repr(v)
    with pytest.raises(SecretStoreError, match="the vault is locked"):
        v.get("a")
    assert vault.Vault.open(paths.vault_path(), PASS).get("a") == Secret(CANARY)
