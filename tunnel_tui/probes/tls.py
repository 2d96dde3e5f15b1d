"""TLS for probes: contexts built from the connection's options, verified
against the database's own name, and a one-line description of what was
negotiated.

Through a tunnel the client connects to 127.0.0.1 while the server's certificate
names the database host as the bastion sees it (db.internal). Drivers pass their
connect address as `server_hostname`, so `PinnedNameContext` replaces it with
the real name when the SSL object is created; this is what keeps verify-full
meaningful through a tunnel.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class TlsMode(IntEnum):
    """Ordered like libpq's sslmode (MySQL's ssl-mode maps onto it)."""

    DISABLE = 0
    ALLOW = 1
    PREFER = 2
    REQUIRE = 3
    VERIFY_CA = 4
    VERIFY_FULL = 5

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


_ALIASES = {
    # libpq sslmode
    "disable": TlsMode.DISABLE,
    "allow": TlsMode.ALLOW,
    "prefer": TlsMode.PREFER,
    "require": TlsMode.REQUIRE,
    "verify-ca": TlsMode.VERIFY_CA,
    "verify-full": TlsMode.VERIFY_FULL,
    # MySQL ssl-mode
    "disabled": TlsMode.DISABLE,
    "preferred": TlsMode.PREFER,
    "required": TlsMode.REQUIRE,
    "verify_ca": TlsMode.VERIFY_CA,
    "verify_identity": TlsMode.VERIFY_FULL,
    "verify-identity": TlsMode.VERIFY_FULL,
    # booleans (ClickHouse secure=, Trino ssl=)
    "true": TlsMode.REQUIRE,
    "1": TlsMode.REQUIRE,
    "yes": TlsMode.REQUIRE,
    "false": TlsMode.DISABLE,
    "0": TlsMode.DISABLE,
    "no": TlsMode.DISABLE,
}


class TlsOptionError(ValueError):
    """An unknown TLS mode in the connection's options."""


def parse_mode(value: str | None, default: TlsMode) -> TlsMode:
    if value is None or value == "":
        return default
    try:
        return _ALIASES[value.strip().lower()]
    except KeyError:
        raise TlsOptionError(f"unknown TLS mode {value!r}") from None


class PinnedNameContext(ssl.SSLContext):
    """An SSLContext that checks the certificate against `pinned_name` whatever
    host name the driver passes (its connect address, 127.0.0.1)."""

    pinned_name: str | None = None

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        name = self.pinned_name or server_hostname
        return super().wrap_bio(incoming, outgoing, server_side, name, session)

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        if self.pinned_name:
            kwargs["server_hostname"] = self.pinned_name
        return super().wrap_socket(sock, *args, **kwargs)


def make_context(mode: TlsMode, *, cafile: str | None, server_name: str) -> PinnedNameContext:
    """A client context for `mode` (ALLOW/PREFER/REQUIRE: encrypted, not verified,
    as libpq; REQUIRE with a CA file verifies the chain, as libpq does)."""
    ctx = PinnedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.pinned_name = server_name
    verify = mode >= TlsMode.VERIFY_CA or (mode == TlsMode.REQUIRE and cafile)
    if verify:
        if cafile:
            ctx.load_verify_locations(cafile=cafile)
        else:
            ctx.load_default_certs()
        ctx.check_hostname = mode == TlsMode.VERIFY_FULL
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass(frozen=True)
class Negotiated:
    version: str
    cipher: str
    verified: str  # what was verified, in words

    def describe(self) -> str:
        return f"{self.version} {self.cipher}, {self.verified}"


def negotiated(ssl_object: Any, mode: TlsMode, cafile: str | None, server_name: str) -> Negotiated:
    version = ssl_object.version() or "TLS"
    cipher = (ssl_object.cipher() or ("?",))[0]
    if ssl_object.context.verify_mode == ssl.CERT_NONE:
        verified = f"certificate not verified (TLS mode {mode.label})"
    else:
        source = cafile or "the system CAs"
        verified = f"certificate verified against {source}"
        if mode == TlsMode.VERIFY_FULL:
            verified += f" for {server_name}"
    return Negotiated(version, cipher, verified)


def verify_failure(exc: ssl.SSLError, mode: TlsMode, cafile: str | None, server_name: str) -> str:
    """Words for a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            return f"the server's certificate is not valid for {server_name}: {reason}"
        return (
            f"the server's certificate was not accepted ({reason}); checked against "
            f"{cafile or 'the system CAs'}"
        )
    return f"TLS handshake failed: {exc.reason or exc}"
