"""The user's ssh-agent, as far as we need it without asyncssh: which keys it holds.

`list_identities` asks the agent at `$SSH_AUTH_SOCK` (PROTOCOL.agent, REQUEST_IDENTITIES)
for the public keys and comments it holds, certificates included. Signing happens in
the engine (asyncssh); nothing here ever sees a private key.

`AgentKey` is what a caller hands the engine for a key that lives in an agent: the
socket to use and the public key to pick among the agent's identities.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from tunnel_tui.core.certificates import Certificate, is_certificate_type, parse_certificate_blob
from tunnel_tui.core.errors import KeyImportError, SecretStoreError, UsageError
from tunnel_tui.core.keys import fingerprint_blob

_REQUEST_IDENTITIES = 11
_IDENTITIES_ANSWER = 12
_FAILURE = 5
_MAX_REPLY = 256 * 1024  # agents answer a few KiB; more is not an agent

ADD_HINT = "load the key into your agent (ssh-add, or unlock it in your password manager)"


class AgentUnavailable(SecretStoreError):
    """No ssh-agent at the socket (unset, gone, refusing), or it holds no such key."""


@dataclass(frozen=True)
class AgentKey:
    """A key that stays in the user's ssh-agent: which agent, which key.

    Not a secret (a socket path and a public key), but only useful to the user who owns
    the socket. The engine asks the agent to sign with this key and no other.
    """

    socket_path: str
    public_key: str  # "type base64" of the stored Key
    fingerprint: str = ""


@dataclass(frozen=True)
class AgentIdentity:
    blob: bytes
    comment: str

    @property
    def type_name(self) -> str:
        (length,) = struct.unpack(">I", self.blob[:4])
        return self.blob[4 : 4 + length].decode(errors="replace")

    @property
    def public_line(self) -> str:
        return f"{self.type_name} {base64.b64encode(self.blob).decode()}"

    @property
    def fingerprint(self) -> str:
        return fingerprint_blob(self.blob)

    @property
    def certificate(self) -> Certificate | None:
        if not is_certificate_type(self.type_name):
            return None
        try:
            return parse_certificate_blob(self.blob)
        except KeyImportError:
            return None

    @property
    def key_public_line(self) -> str:
        """The plain key: for a certificate, the key it certifies."""
        cert = self.certificate
        return cert.public_key if cert is not None else self.public_line

    @property
    def key_fingerprint(self) -> str:
        cert = self.certificate
        return cert.key_fingerprint if cert is not None else self.fingerprint


def socket_path(explicit: str | None = None) -> str:
    """The agent socket to use: `explicit`, else $SSH_AUTH_SOCK; AgentUnavailable if none."""
    path = explicit if explicit is not None else os.environ.get("SSH_AUTH_SOCK", "")
    if not path:
        raise AgentUnavailable(
            "no ssh-agent: SSH_AUTH_SOCK is not set",
            hint="start one (eval $(ssh-agent)) and ssh-add your key, or run from a terminal "
            "where SSH_AUTH_SOCK points at your agent",
        )
    return path


def list_identities(path: str | None = None, *, timeout: float = 5.0) -> list[AgentIdentity]:
    """Every key (and certificate) the agent holds, in the agent's order."""
    where = socket_path(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(where)
            sock.sendall(struct.pack(">IB", 1, _REQUEST_IDENTITIES))
            reply = _read_message(sock)
    except (OSError, TimeoutError) as exc:
        code = getattr(exc, "errno", None)
        why = os.strerror(code).lower() if isinstance(code, int) else "no answer"
        raise AgentUnavailable(
            f"the ssh-agent at {where} cannot be reached: {why}",
            hint="check SSH_AUTH_SOCK (is your agent running? ssh-add -l shows its keys)",
        ) from None
    return _parse_identities(reply, where)


def find_key(identities: Sequence[AgentIdentity], public_key: str) -> list[AgentIdentity]:
    """The agent's identities for `public_key` ("type base64"): its certificates first
    (OpenSSH offers those first too), then the plain key."""
    wanted = " ".join(public_key.split()[:2])
    certs = [i for i in identities if i.certificate is not None and i.key_public_line == wanted]
    plain = [i for i in identities if i.certificate is None and i.public_line == wanted]
    return certs + plain


def pick(identities: Sequence[AgentIdentity], fingerprint: str | None) -> AgentIdentity:
    """The key `add --ssh-agent` stores: the only one, or the one with `fingerprint`.

    Certificates are not choices of their own: they go with their key."""
    keys = [i for i in identities if i.certificate is None]
    for cert in (i for i in identities if i.certificate is not None):
        if all(k.public_line != cert.key_public_line for k in keys):
            keys.append(cert)  # an agent may hold a certificate without its plain key
    if not keys:
        raise AgentUnavailable("your ssh-agent holds no keys", hint=ADD_HINT)
    if fingerprint:
        wanted = fingerprint if fingerprint.startswith("SHA256:") else f"SHA256:{fingerprint}"
        for identity in keys:
            if wanted in (identity.fingerprint, identity.key_fingerprint):
                return identity
        raise UsageError(
            f"your ssh-agent holds no key with fingerprint {wanted}",
            field="key_fingerprint", hint="see its keys with: ssh-add -l",
        )
    if len(keys) > 1:
        listing = "; ".join(describe(i) for i in keys)
        raise UsageError(
            f"your ssh-agent holds {len(keys)} keys: {listing}",
            field="key_fingerprint", hint="pick one with --key-fingerprint SHA256:...",
        )
    return keys[0]


def describe(identity: AgentIdentity) -> str:
    """"SHA256:… ED25519 comment", as `ssh-add -l` lists it."""
    kind = identity.key_public_line.split()[0]
    text = f"{identity.key_fingerprint} {kind}"
    return f"{text} {identity.comment}" if identity.comment else text


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError(0, "closed")
        data += chunk
    return data


def _read_message(sock: socket.socket) -> bytes:
    (length,) = struct.unpack(">I", _read_exact(sock, 4))
    if not 0 < length <= _MAX_REPLY:
        raise ConnectionResetError(0, "bad reply")
    return _read_exact(sock, length)


def _parse_identities(reply: bytes, where: str) -> list[AgentIdentity]:
    def bad() -> AgentUnavailable:
        return AgentUnavailable(f"the ssh-agent at {where} gave an answer we cannot read",
                                hint="check SSH_AUTH_SOCK points at an ssh-agent")

    if reply[:1] == bytes([_FAILURE]):
        raise AgentUnavailable(f"the ssh-agent at {where} refused to list its keys",
                               hint="unlock your agent (ssh-add -X) and try again")
    if reply[:1] != bytes([_IDENTITIES_ANSWER]) or len(reply) < 5:
        raise bad()
    (count,) = struct.unpack(">I", reply[1:5])
    offset = 5
    found = []
    try:
        for _ in range(min(count, 1000)):
            blob, offset = _string_at(reply, offset)
            comment, offset = _string_at(reply, offset)
            found.append(AgentIdentity(blob, comment.decode(errors="replace")))
    except ValueError:
        raise bad() from None
    return found


def _string_at(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise ValueError("short")
    (length,) = struct.unpack(">I", data[offset : offset + 4])
    end = offset + 4 + length
    if end > len(data):
        raise ValueError("short")
    return data[offset + 4 : end], end
