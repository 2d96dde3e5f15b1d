"""SSH keys with `cryptography`: generate, import any common private key format,
normalise to unencrypted OpenSSH PEM, fingerprints exactly as `ssh-keygen -lf`.

Error messages name the problem and the fix, never any key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from tunnel_tui.core.errors import KeyImportError
from tunnel_tui.core.model import KeyType
from tunnel_tui.core.secret import Secret

RSA_BITS = 4096
MIN_RSA_BITS = 1024  # OpenSSH >= 9.1 refuses shorter keys (RequiredRSASize)
_EC_CURVES = {"secp256r1", "secp384r1", "secp521r1"}  # the ones OpenSSH speaks
_PUBLIC_TYPES: dict[str, KeyType] = {
    "ssh-ed25519": KeyType.ED25519,
    "ssh-rsa": KeyType.RSA,
    "ecdsa-sha2-nistp256": KeyType.ECDSA,
    "ecdsa-sha2-nistp384": KeyType.ECDSA,
    "ecdsa-sha2-nistp521": KeyType.ECDSA,
    # FIDO (security key) types: only their public half is ever ours (ssh-agent keys).
    "sk-ssh-ed25519@openssh.com": KeyType.SK_ED25519,
    "sk-ecdsa-sha2-nistp256@openssh.com": KeyType.SK_ECDSA,
}
_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class KeyMaterial:
    """A private key ready for the keyring, and what may be shown of it."""

    private_pem: Secret  # OpenSSH format, unencrypted (the keyring is its protection)
    public_line: str  # "ssh-ed25519 AAAA..." without comment
    key_type: KeyType
    fingerprint: str  # "SHA256:..." as ssh-keygen -lf prints it


# ---------------------------------------------------------------- generate


def generate(
    key_type: KeyType | Literal["ed25519", "rsa"] = "ed25519", comment: str = ""
) -> KeyMaterial:
    """A fresh key: ed25519 (default) or RSA 4096.

    `comment` is accepted for symmetry with ssh-keygen but not stored in the private
    PEM: the comment shown to people belongs to the authorized_keys line.
    """
    kind = KeyType(key_type)
    key: PrivateKey
    if kind is KeyType.ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind is KeyType.RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise KeyImportError(
            f"generating {kind.value} keys is not supported",
            hint="use ed25519 (default) or rsa",
            field="key_type",
        )
    return _material(key)


# ---------------------------------------------------------------- import


def load_private(data: bytes | str, passphrase: Secret | None = None) -> KeyMaterial:
    """Import a private key: OpenSSH (also bcrypt-encrypted), PKCS#1, PKCS#8 (plain or
    encrypted), SEC1, legacy encrypted PEM, or DER. Raises KeyImportError."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    text = _clean(raw)
    if not text:
        raise KeyImportError("the key is empty", hint="paste the whole private key file")
    _refuse_non_private(text)

    # A private key block wins over others in the same paste (a certificate first, say).
    blocks = list(_BEGIN.finditer(text))
    private = [b for b in blocks if b.group(1).endswith(b"PRIVATE KEY")]
    candidates = private or blocks
    if not candidates:
        return _material(_load_der(raw, passphrase))
    begin = candidates[0]
    label = begin.group(1).decode()
    end_marker = b"-----END " + begin.group(1) + b"-----"
    end = text.find(end_marker, begin.end())
    pem = text[begin.start() : end + len(end_marker)] + b"\n" if end >= 0 else text[begin.start() :]
    if label == "OPENSSH PRIVATE KEY":
        key = _load_openssh(pem, passphrase)
    elif label == "DSA PRIVATE KEY":
        raise _unsupported("DSA")
    elif label.endswith("PRIVATE KEY"):
        key = _load_pem(pem, passphrase, encrypted=_pem_is_encrypted(pem, label))
    else:
        raise KeyImportError(
            f"this is a PEM '{label}' block, not a private key",
            hint="give the private key file (it starts with -----BEGIN ... PRIVATE KEY-----)",
        )
    return _material(key)


def _clean(raw: bytes) -> bytes:
    """Pasted text: CRLF, indentation and surrounding blank lines are not errors."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"-----BEGIN" not in raw:
        return raw.strip()
    lines = [
        line.strip() for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    ]
    return b"\n".join(lines).strip() + b"\n"


def _refuse_non_private(text: bytes) -> None:
    head = text[:64]
    if head.startswith(b"PuTTY-User-Key-File"):
        raise KeyImportError(
            "this is a PuTTY .ppk key, which tunnel-tui does not read",
            hint="convert it with puttygen key.ppk -O private-openssh -o key",
        )
    if b"PRIVATE KEY-----" in text:
        return
    first = text.split(b"\n", 1)[0].strip()
    words = first.decode(errors="replace").split()
    if (
        any(
            w.startswith(("ssh-", "ecdsa-sha2-", "sk-")) and nxt.startswith("AAAA")
            for w, nxt in zip(words, words[1:], strict=False)
        )
        or b"PUBLIC KEY" in head
        or head.startswith(b"---- BEGIN SSH2")
    ):
        raise KeyImportError(
            "this is a public key; tunnel-tui needs the private key",
            hint="give the file without .pub (for example ~/.ssh/id_ed25519)",
        )


def _load_openssh(pem: bytes, passphrase: Secret | None) -> PrivateKey:
    encrypted = _openssh_is_encrypted(pem)
    if encrypted and not passphrase:
        raise _needs_passphrase()
    password = passphrase.reveal().encode() if (encrypted and passphrase) else None
    try:
        key = serialization.load_ssh_private_key(pem, password)
    except UnsupportedAlgorithm as exc:
        raise _unsupported(_openssh_key_type(pem) or "this key type") from exc
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise _wrong_passphrase() from exc
        raise _garbage() from exc
    return _check_type(key)


def _openssh_blob(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.split(b"\n")[1:] if line and not line.startswith(b"-----"))
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _garbage() from exc
    if not blob.startswith(_OPENSSH_MAGIC):
        raise _garbage()
    return blob


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise _garbage()
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise _garbage()
    return blob[offset + 4 : end], end


def _openssh_is_encrypted(pem: bytes) -> bool:
    blob = _openssh_blob(pem)
    cipher, _ = _read_string(blob, len(_OPENSSH_MAGIC))
    return cipher != b"none"


def _openssh_key_type(pem: bytes) -> str | None:
    """The public key type inside an OpenSSH private key (public part is never encrypted)."""
    try:
        blob = _openssh_blob(pem)
        offset = len(_OPENSSH_MAGIC)
        for _ in range(3):  # cipher, kdf, kdf options
            _, offset = _read_string(blob, offset)
        offset += 4  # number of keys
        public, _ = _read_string(blob, offset)
        key_type, _ = _read_string(public, 0)
        return key_type.decode(errors="replace")
    except KeyImportError:
        return None


def _pem_is_encrypted(pem: bytes, label: str) -> bool:
    return label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in pem[:200]


def _load_pem(pem: bytes, passphrase: Secret | None, *, encrypted: bool) -> PrivateKey:
    if encrypted and not passphrase:
        raise _needs_passphrase()
    password = passphrase.reveal().encode() if (encrypted and passphrase) else None
    try:
        key = serialization.load_pem_private_key(pem, password)
    except UnsupportedAlgorithm as exc:
        raise _unsupported("this key type") from exc
    except TypeError as exc:  # encryption not announced in the header (rare)
        raise _needs_passphrase() from exc
    except ValueError as exc:
        if encrypted:
            raise _wrong_passphrase() from exc
        raise _garbage() from exc
    return _check_type(key)


def _load_der(raw: bytes, passphrase: Secret | None) -> PrivateKey:
    if raw[:1] != b"\x30":  # every DER key is an ASN.1 SEQUENCE
        raise _garbage()
    password = passphrase.reveal().encode() if passphrase else None
    try:
        key = serialization.load_der_private_key(raw, password)
    except UnsupportedAlgorithm as exc:
        raise _unsupported("this key type") from exc
    except TypeError as exc:
        if password is None:
            raise _needs_passphrase() from exc
        try:  # a passphrase was given for a key that has none
            key = serialization.load_der_private_key(raw, None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as inner:
            raise _garbage() from inner
    except ValueError as exc:
        raise (_wrong_passphrase() if password else _garbage()) from exc
    return _check_type(key)


def _check_type(key: object) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyImportError(
                f"this RSA key has only {key.key_size} bits; OpenSSH refuses keys under "
                f"{MIN_RSA_BITS} bits",
                hint="generate a new key (ed25519, or RSA 4096)",
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _EC_CURVES:
            raise _unsupported(f"ECDSA on curve {key.curve.name}")
        return key
    if isinstance(key, dsa.DSAPrivateKey):
        raise _unsupported("DSA")
    raise _unsupported(type(key).__name__.removesuffix("PrivateKey").lstrip("_") or "this key type")


def _needs_passphrase() -> KeyImportError:
    return KeyImportError(
        "this key is encrypted: give its passphrase",
        hint="the key is decrypted once and stored in the keyring; the file is not changed",
        field="passphrase",
    )


def _wrong_passphrase() -> KeyImportError:
    return KeyImportError(
        "wrong passphrase for this key",
        hint="check the passphrase (test it with ssh-keygen -y -f FILE)",
        field="passphrase",
    )


def _garbage() -> KeyImportError:
    return KeyImportError(
        "this is not a readable private key (truncated or damaged?)",
        hint="give the whole file, from -----BEGIN to -----END",
    )


def _unsupported(what: str) -> KeyImportError:
    return KeyImportError(
        f"{what} keys are not supported",
        hint="use an ed25519, RSA or ECDSA (P-256/384/521) key, or generate a new one",
    )


# ---------------------------------------------------------------- public side


def _material(key: PrivateKey) -> KeyMaterial:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public_line = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    key_type, _ = parse_public_line(public_line)
    return KeyMaterial(Secret(pem), public_line, key_type, fingerprint(public_line))


def parse_public_line(public_line: str) -> tuple[KeyType, bytes]:
    """("ssh-ed25519 AAAA... comment") -> (KeyType, key blob). Options before the type
    (as in authorized_keys) are not accepted here."""
    parts = public_line.strip().split()
    if len(parts) < 2 or parts[0] not in _PUBLIC_TYPES:
        raise KeyImportError(
            "not an OpenSSH public key line",
            hint="expected 'ssh-ed25519 AAAA...', 'ssh-rsa AAAA...' or 'ecdsa-sha2-nistp256 ...'",
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        name, _ = _read_string(blob, 0)
    except (binascii.Error, ValueError, KeyImportError) as exc:
        raise KeyImportError("the public key's base64 is damaged") from exc
    if name.decode(errors="replace") != parts[0]:
        raise KeyImportError("the public key's type does not match its data")
    return _PUBLIC_TYPES[parts[0]], blob


def public_key_only(public_line: str) -> str:
    """The line as "type base64", without comment, validated."""
    parse_public_line(public_line)
    type_, b64 = public_line.split()[:2]
    return f"{type_} {b64}"


def fingerprint(public_line: str) -> str:
    """`SHA256:...` exactly as `ssh-keygen -lf` prints it (base64, no padding)."""
    _, blob = parse_public_line(public_line)
    return fingerprint_blob(blob)


def fingerprint_blob(blob: bytes) -> str:
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


NO_COMMAND = "/bin/false"  # the forced command of a restricted line: tunnels only


def authorized_keys_line(
    public_line: str,
    comment: str,
    restrict_targets: Sequence[tuple[str, int]] | None = None,
) -> str:
    """One authorized_keys line. With `restrict_targets`, the key may only forward
    ports to those (host, port) pairs and run nothing:
    `restrict,port-forwarding,permitopen="h:p",...,command="/bin/false"`.

    `restrict` alone still lets the key run commands and SFTP (ASYNCSSH-NOTES §6); the
    forced command makes every exec, shell and subsystem (SFTP) fail, while
    direct-tcpip forwards (all a tunnel uses) are unaffected."""
    key = public_key_only(public_line)
    clean_comment = " ".join(comment.split())
    line = f"{key} {clean_comment}".rstrip()
    if restrict_targets is None:
        return line
    options = ["restrict", "port-forwarding"]
    seen: set[str] = set()
    for host, port in restrict_targets:
        target = _permitopen_target(host, port)
        if target not in seen:
            seen.add(target)
            options.append(f'permitopen="{target}"')
    options.append(f'command="{NO_COMMAND}"')
    return ",".join(options) + " " + line


def _permitopen_target(host: str, port: int) -> str:
    if not host or any(c in host for c in '"\\ \t\n,') or not 0 < int(port) < 65536:
        raise KeyImportError(f"cannot restrict a key to {host!r}:{port}", field="target")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6, as sshd's permitopen expects
    return f"{host}:{int(port)}"


# ---------------------------------------------------------------- files


def file_permission_warning(path: str | os.PathLike[str]) -> str | None:
    """OpenSSH's warning for a private key file others may read, or None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (
        "WARNING: UNPROTECTED PRIVATE KEY FILE! "
        f"Permissions {mode:04o} for '{Path(path)}' are too open. "
        "It is required that your private key files are NOT accessible by others "
        f"(fix it with: chmod 600 '{Path(path)}')."
    )
