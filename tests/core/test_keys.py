"""Keys: every format a user may bring imports, its fingerprint is ssh-keygen's, the
normalised PEM works in ssh-keygen and asyncssh; bad input gets a clear message."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import asyncssh
import pytest

from tests.fixtures.binaries import require_binary
from tests.fixtures.keyfiles import SSH_KEYGEN_CASES, KeyFile, KeyFiles
from tests.fixtures.secret_service import SecretServiceHandle
from tunnel_tui.core import keys
from tunnel_tui.core.errors import KeyImportError
from tunnel_tui.core.model import KeyType
from tunnel_tui.core.secret import Secret

GOOD_CASES = [*SSH_KEYGEN_CASES, "ed25519-pkcs8", "ed25519-pkcs8-enc", "rsa-pkcs8-openssl-enc"]


def _keygen() -> str:
    return require_binary("ssh-keygen", "openssh-client")


def _keygen_fingerprint(public_line: str, tmp: Path) -> str:
    pub = tmp / "k.pub"
    pub.write_text(public_line + " c\n")
    out = subprocess.run(
        [_keygen(), "-lf", str(pub)], capture_output=True, text=True, check=True, timeout=30
    )
    return out.stdout.split()[1]


def _write_private(tmp: Path, pem: str) -> Path:
    fd = os.open(tmp / "normalised", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return tmp / "normalised"


def _assert_usable(material: keys.KeyMaterial, tmp: Path) -> None:
    pem = material.private_pem.reveal()
    assert pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert material.fingerprint == _keygen_fingerprint(material.public_line, tmp)
    # ssh-keygen reads the normalised key without a passphrase and derives the same public key
    path = _write_private(tmp, pem)
    derived = subprocess.run(
        [_keygen(), "-y", "-P", "", "-f", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert " ".join(derived.stdout.split()[:2]) == material.public_line
    # and asyncssh (the engine) loads it as is
    loaded = asyncssh.import_private_key(pem)
    assert loaded.export_public_key().decode().split()[:2] == material.public_line.split()
    assert loaded.get_fingerprint("sha256") == material.fingerprint


@pytest.mark.parametrize("case", GOOD_CASES)
def test_every_format_imports_and_normalises(case: str, keyfiles: KeyFiles, tmp_path: Path) -> None:
    keyfile: KeyFile = keyfiles.good[case]
    passphrase = Secret(keyfile.passphrase) if keyfile.passphrase else None
    material = keys.load_private(keyfile.read(), passphrase)
    assert material.key_type == KeyType(keyfile.key_type)
    assert material.public_line == keyfile.public_line  # as the tool that made it wrote it
    _assert_usable(material, tmp_path)


@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_generate(key_type: str, tmp_path: Path) -> None:
    material = keys.generate(key_type, comment="tunnel-tui:test")  # type: ignore[arg-type]
    assert material.key_type == KeyType(key_type)
    assert material.public_line.startswith("ssh-ed25519 " if key_type == "ed25519" else "ssh-rsa ")
    assert len(material.public_line.split()) == 2  # no comment
    _assert_usable(material, tmp_path)
    if key_type == "rsa":
        assert asyncssh.import_private_key(material.private_pem.reveal()).pyca_key.key_size == 4096


def test_pasted_text_with_crlf_and_indentation_imports(keyfiles: KeyFiles) -> None:
    keyfile = keyfiles.good["ed25519-openssh"]
    pasted = "\n\n" + "\r\n".join("   " + line for line in keyfile.read().decode().splitlines())
    assert keys.load_private(pasted).public_line == keyfile.public_line


def test_passphrase_given_for_unencrypted_key_is_ignored(keyfiles: KeyFiles) -> None:
    for case in ("ed25519-openssh", "rsa-pkcs8", "ecdsa-sec1"):
        keyfile = keyfiles.good[case]
        material = keys.load_private(keyfile.read(), Secret("unneeded"))
        assert material.public_line == keyfile.public_line


ENCRYPTED = [c for c in GOOD_CASES if c.endswith("-enc")]


@pytest.mark.parametrize("case", ENCRYPTED)
def test_encrypted_without_passphrase_asks_for_it(case: str, keyfiles: KeyFiles) -> None:
    with pytest.raises(KeyImportError) as info:
        keys.load_private(keyfiles.good[case].read())
    assert info.value.message == "this key is encrypted: give its passphrase"
    assert info.value.field == "passphrase"
    assert info.value.exit_code == 2


@pytest.mark.parametrize("case", ENCRYPTED)
def test_wrong_passphrase_is_named(case: str, keyfiles: KeyFiles) -> None:
    wrong = "not the passphrase 42"
    with pytest.raises(KeyImportError) as info:
        keys.load_private(keyfiles.good[case].read(), Secret(wrong))
    assert info.value.message == "wrong passphrase for this key"
    assert wrong not in str(info.value) and wrong not in (info.value.hint or "")


def test_ppk_gets_the_puttygen_command(keyfiles: KeyFiles) -> None:
    with pytest.raises(KeyImportError) as info:
        keys.load_private(keyfiles.ppk.read_bytes())
    assert "convert it with puttygen key.ppk -O private-openssh -o key" in (info.value.hint or "")


def test_public_key_instead_of_private(keyfiles: KeyFiles) -> None:
    with pytest.raises(KeyImportError, match="this is a public key"):
        keys.load_private(keyfiles.public.read_bytes())
    rsa_pub = keyfiles.good["rsa-pkcs1"].path.with_name("rsa-pkcs1.pub")
    for fmt in ("PKCS8", "RFC4716"):  # -----BEGIN PUBLIC KEY----- / ---- BEGIN SSH2 PUBLIC KEY
        exported = subprocess.run(
            [_keygen(), "-e", "-m", fmt, "-f", str(rsa_pub)],
            capture_output=True,
            check=True,
            timeout=30,
        )
        with pytest.raises(KeyImportError, match="this is a public key"):
            keys.load_private(exported.stdout)


def test_dsa_is_unsupported(keyfiles: KeyFiles) -> None:
    with pytest.raises(KeyImportError, match="DSA keys are not supported"):
        keys.load_private(keyfiles.dsa.read_bytes())


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", b"\x30\x03\x02\x01\x00"],
)
def test_garbage_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(KeyImportError):
        keys.load_private(data)


def test_truncated_pem_message_has_no_key_material(keyfiles: KeyFiles) -> None:
    body = keyfiles.truncated.read_text().splitlines()[1]
    with pytest.raises(KeyImportError) as info:
        keys.load_private(keyfiles.truncated.read_bytes())
    text = f"{info.value} {info.value.hint} {info.value!r}"
    assert "truncated or damaged" in text
    assert body[:16] not in text


def test_key_material_repr_redacts_private_key() -> None:
    material = keys.generate()
    assert "PRIVATE" not in repr(material)
    assert material.private_pem.reveal()[40:80] not in repr(material)


def test_fingerprint_matches_ssh_keygen_on_real_pub(keyfiles: KeyFiles, tmp_path: Path) -> None:
    pub = keyfiles.public.read_text().strip()  # with its comment
    out = subprocess.run(
        [_keygen(), "-lf", str(keyfiles.public)], capture_output=True, text=True, check=True
    )
    assert keys.fingerprint(pub) == out.stdout.split()[1]
    with pytest.raises(KeyImportError):
        keys.fingerprint("ssh-ed25519 AAAAB3NzaC1yc2E=")  # blob says ssh-rsa


def test_file_permission_warning(tmp_path: Path) -> None:
    path = tmp_path / "id"
    path.write_text("x")
    path.chmod(0o600)
    assert keys.file_permission_warning(path) is None
    path.chmod(0o644)
    warning = keys.file_permission_warning(path)
    assert warning is not None
    assert warning.startswith("WARNING: UNPROTECTED PRIVATE KEY FILE!")
    assert f"Permissions 0644 for '{path}' are too open." in warning
    path.chmod(0o640)
    assert "Permissions 0640" in (keys.file_permission_warning(path) or "")


def test_authorized_keys_lines() -> None:
    material = keys.generate()
    plain = keys.authorized_keys_line(material.public_line + " old-comment", "tunnel-tui:prod")
    assert plain == f"{material.public_line} tunnel-tui:prod"
    restricted = keys.authorized_keys_line(
        material.public_line,
        "tunnel-tui:prod",
        restrict_targets=[("db.internal", 5432), ("10.0.0.7", 3306), ("db.internal", 5432)],
    )
    assert restricted == (
        'restrict,port-forwarding,permitopen="db.internal:5432",permitopen="10.0.0.7:3306",'
        f'command="/bin/false" {material.public_line} tunnel-tui:prod'
    )
    with pytest.raises(KeyImportError):
        keys.authorized_keys_line(material.public_line, "c", restrict_targets=[('a"b', 1)])


def test_restricted_line_is_accepted_by_sshd_syntax(tmp_path: Path) -> None:
    """ssh-keygen -lf parses authorized_keys lines with options: ours must be valid."""
    material = keys.generate()
    line = keys.authorized_keys_line(material.public_line, "c", [("::1", 5432), ("db", 1)])
    path = tmp_path / "authorized_keys"
    path.write_text(line + "\n")
    out = subprocess.run([_keygen(), "-lf", str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split()[1] == material.fingerprint


def test_every_format_round_trips_through_the_real_keyring(
    keyfiles: KeyFiles, secret_service: SecretServiceHandle
) -> None:
    """Import, store in the Secret Service, read back: asyncssh loads what comes back."""
    from tunnel_tui.core.secrets import open_store

    store = open_store()
    assert store.backend_name == "Secret Service"
    for case in GOOD_CASES:
        keyfile = keyfiles.good[case]
        passphrase = Secret(keyfile.passphrase) if keyfile.passphrase else None
        material = keys.load_private(keyfile.read(), passphrase)
        store.set(f"key:{case}", material.private_pem)
        back = store.get(f"key:{case}")
        assert back == material.private_pem, case
        loaded = asyncssh.import_private_key(back.reveal())
        assert loaded.get_fingerprint("sha256") == material.fingerprint, case


def test_short_rsa_key_is_refused(tmp_path: Path) -> None:
    openssl = require_binary("openssl", "openssl")
    path = tmp_path / "short"
    subprocess.run([openssl, "genrsa", "-out", str(path), "512"], capture_output=True, check=True)
    with pytest.raises(KeyImportError, match="only 512 bits; OpenSSH refuses keys under 1024"):
        keys.load_private(path.read_bytes())


def test_key_inside_a_bigger_paste(keyfiles: KeyFiles, tmp_path: Path) -> None:
    """A certificate before the key, text after it: the private key block is found."""
    openssl = require_binary("openssl", "openssl")
    source = keyfiles.good["rsa-pkcs8"]
    cert = subprocess.run(
        [openssl, "req", "-new", "-x509", "-key", str(source.path), "-subj", "/CN=t", "-days", "1"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    for case in ("rsa-pkcs8", "ed25519-openssh"):
        keyfile = keyfiles.good[case]
        pasted = b"Bag Attributes\n" + cert + keyfile.read() + b"trailing notes\n"
        assert keys.load_private(pasted).public_line == keyfile.public_line


def test_authorized_keys_line_pasted_as_private_key() -> None:
    material = keys.generate()
    line = keys.authorized_keys_line(material.public_line, "c", [("db", 5432)])
    with pytest.raises(KeyImportError, match="this is a public key"):
        keys.load_private(line)
