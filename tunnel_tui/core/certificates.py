"""OpenSSH certificates (PROTOCOL.certkeys), read without any key material.

A user certificate binds a public key to principals for a validity window, signed by
a CA the bastion trusts (`TrustedUserCAKeys`). We read what a person needs to see and
what validation checks: the key it certifies, the principals, valid after/before.
The signature is the server's business; nothing here verifies it.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tunnel_tui.core.errors import KeyImportError
from tunnel_tui.core.formatting import duration_words
from tunnel_tui.core.keys import fingerprint_blob
from tunnel_tui.core.model import Key

CERT_SUFFIX = "-cert-v01@openssh.com"
FOREVER = 0xFFFFFFFFFFFFFFFF
EXPIRY_WARNING = timedelta(hours=24)

# Fields after the nonce, per certified key type (PROTOCOL.certkeys): "s" a string,
# "m" an mpint (same wire form as a string).
_KEY_FIELDS = {
    "ssh-rsa": "mm",
    "ssh-ed25519": "s",
    "ecdsa-sha2-nistp256": "ss",
    "ecdsa-sha2-nistp384": "ss",
    "ecdsa-sha2-nistp521": "ss",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sss",
    "sk-ssh-ed25519@openssh.com": "ss",
}


class CertificateState(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"  # valid, but for less than EXPIRY_WARNING
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"


@dataclass(frozen=True)
class Certificate:
    cert_type: str  # "ssh-ed25519-cert-v01@openssh.com"
    line: str  # "type base64" (no comment), as stored in the config
    key_blob: bytes  # the certified public key, as in a plain public key line
    is_user: bool  # a user certificate (not a host certificate)
    key_id: str  # the -I identity the CA gave it
    serial: int
    principals: tuple[str, ...]  # empty: valid for any principal
    valid_after: datetime | None  # None: from the beginning of time
    valid_before: datetime | None  # None: forever

    @property
    def key_type(self) -> str:
        """The certified key's type, e.g. "ssh-ed25519"."""
        return _base_type(self.cert_type)

    @property
    def public_key(self) -> str:
        """The certified key as "type base64" (matches a Key's public_key)."""
        return f"{self.key_type} {base64.b64encode(self.key_blob).decode()}"

    @property
    def key_fingerprint(self) -> str:
        return fingerprint_blob(self.key_blob)

    def state(self, now: datetime | None = None) -> CertificateState:
        now = now or datetime.now(UTC)
        if self.valid_after is not None and now < self.valid_after:
            return CertificateState.NOT_YET_VALID
        if self.valid_before is None:
            return CertificateState.VALID
        if now >= self.valid_before:
            return CertificateState.EXPIRED
        if self.valid_before - now < EXPIRY_WARNING:
            return CertificateState.EXPIRING
        return CertificateState.VALID

    def principals_text(self) -> str:
        return ", ".join(self.principals) if self.principals else "any principal"

    def validity_text(self) -> str:
        """"2026-12-04 20:00 → 2026-12-04 21:00 UTC", as ssh-keygen -L shows it, in UTC."""
        start = _when(self.valid_after) if self.valid_after else "always"
        end = _when(self.valid_before) if self.valid_before else "forever"
        return f"{start} → {end} UTC" if self.valid_before or self.valid_after else "forever"

    def summary(self, now: datetime | None = None) -> str:
        """One line for `show`, the keys screen and validation details."""
        state = self.state(now)
        text = f"certificate for {self.principals_text()}, valid {self.validity_text()}"
        if state is CertificateState.EXPIRED:
            text += " (EXPIRED)"
        elif state is CertificateState.NOT_YET_VALID:
            text += " (not valid yet)"
        elif state is CertificateState.EXPIRING:
            assert self.valid_before is not None
            left = (self.valid_before - (now or datetime.now(UTC))).total_seconds()
            text += f" (expires in {duration_words(left)})"
        return text


def stored_certificate(key: Key) -> Certificate | None:
    """The certificate stored with `key` (--certificate), or None (none, or unreadable:
    validate says so)."""
    if not key.certificate:
        return None
    try:
        return parse_certificate(key.certificate)
    except KeyImportError:
        return None


def needs_attention(state: CertificateState) -> bool:
    """Expired, not valid yet, or expiring within a day: the lists mark such a key."""
    return state is not CertificateState.VALID


def is_certificate_type(type_name: str) -> bool:
    return type_name.endswith(CERT_SUFFIX)


def _base_type(cert_type: str) -> str:
    base = cert_type.removesuffix(CERT_SUFFIX)
    return base + "@openssh.com" if base.startswith("sk-") else base


def parse_certificate(text: str | bytes) -> Certificate:
    """A `*-cert.pub` line: "type base64 [comment]"."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return _not_cert()
    parts = text.strip().split()
    if len(parts) < 2 or not is_certificate_type(parts[0]):
        _not_cert()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise KeyImportError("the certificate's base64 is damaged",
                             hint="give the whole *-cert.pub file", field="certificate") from None
    cert = parse_certificate_blob(blob)
    if cert.cert_type != parts[0]:
        raise KeyImportError("the certificate's type does not match its data",
                             field="certificate")
    return cert


def parse_certificate_blob(blob: bytes) -> Certificate:
    reader = _Reader(blob)
    cert_type = reader.string().decode(errors="replace")
    base = _base_type(cert_type)
    if not is_certificate_type(cert_type) or base not in _KEY_FIELDS:
        raise KeyImportError(f"unsupported certificate type {cert_type!r}", field="certificate")
    reader.string()  # nonce
    key_parts = [reader.string() for _ in _KEY_FIELDS[base]]
    serial = reader.uint64()
    kind = reader.uint32()
    key_id = reader.string().decode(errors="replace")
    principals_blob = _Reader(reader.string())
    principals = []
    while not principals_blob.at_end():
        principals.append(principals_blob.string().decode(errors="replace"))
    valid_after = reader.uint64()
    valid_before = reader.uint64()
    for _ in range(5):  # critical options, extensions, reserved, signature key, signature
        reader.string()
    key_blob = _string(base.encode()) + b"".join(_string(p) for p in key_parts)
    return Certificate(
        cert_type=cert_type,
        line=f"{cert_type} {base64.b64encode(blob).decode()}",
        key_blob=key_blob,
        is_user=kind == 1,
        key_id=key_id,
        serial=serial,
        principals=tuple(principals),
        valid_after=_time(valid_after) if valid_after else None,
        valid_before=None if valid_before == FOREVER else _time(valid_before),
    )


def check_user_certificate_for(cert: Certificate, public_key: str) -> None:
    """KeyImportError unless `cert` is a user certificate of `public_key` ("type b64")."""
    if not cert.is_user:
        raise KeyImportError(
            "this is a host certificate, not a user certificate",
            hint="give the user certificate the CA signed for this key (ssh-keygen -s CA -I ID "
            "-n USER key.pub)", field="certificate",
        )
    if " ".join(public_key.split()[:2]) != cert.public_key:
        raise KeyImportError(
            f"this certificate is for another key ({cert.key_fingerprint})",
            hint="give the *-cert.pub that belongs to this key", field="certificate",
        )


def _not_cert() -> Certificate:
    raise KeyImportError(
        "not an OpenSSH certificate",
        hint="give the *-cert.pub file (its line starts with ssh-ed25519-cert-v01@openssh.com "
        "or similar)",
        field="certificate",
    )


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _time(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def _take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise KeyImportError("the certificate is truncated or damaged",
                                 hint="give the whole *-cert.pub file", field="certificate")
        chunk, self.offset = self.data[self.offset : end], end
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self._take(4))[0]
        return value

    def uint64(self) -> int:
        value: int = struct.unpack(">Q", self._take(8))[0]
        return value

    def string(self) -> bytes:
        return self._take(self.uint32())

    def at_end(self) -> bool:
        return self.offset >= len(self.data)
