"""Vertica probe: Vertica's client protocol is derived from PostgreSQL's v3
protocol, and this probe speaks the small part of it it needs, without a driver.

What is checked, step by step:
- db-tls: TCP reachability through the tunnel plus the protocol's SSLRequest,
  whose one-byte answer ('S' or 'N') only a Vertica/PostgreSQL-protocol server
  gives; with `tls=true`/`sslmode=require` (or stricter) the TLS handshake too.
- db-auth: a startup packet for the user and database; the server's reply type
  says whether it accepts the user and which authentication it wants. Trust,
  cleartext and MD5 passwords are completed here (so a wrong password fails);
  other methods (Vertica's SHA-512 hash, Kerberos, OAuth) are reported `skip`:
  the server answered but the password itself was not verified.
- query: `SELECT version()` over the simple-query protocol, only when logged in.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import struct
from collections.abc import AsyncIterator

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.probes.base import StepClock, first_line, password_hint
from tunnel_tui.probes.tls import (
    TlsMode,
    TlsOptionError,
    make_context,
    negotiated,
    parse_mode,
    verify_failure,
)

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
PROTOCOL_VERSION = 3 << 16 | 5  # Vertica 3.5; servers negotiate down
_AUTH_NAMES = {
    2: "Kerberos",
    7: "GSS",
    9: "SSPI",
    10: "SASL/SCRAM",
    12: "OAuth",
    65536: "hashed password",
    65536 + 512: "SHA-512 hashed password",
}


class ProtocolError(Exception):
    pass


async def _message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readexactly(5)
    kind, length = head[:1], struct.unpack("!i", head[1:])[0]
    if length < 4 or length > 1 << 20:
        raise ProtocolError(f"implausible message length {length}")
    return kind, await reader.readexactly(length - 4)


def _error_fields(body: bytes) -> str:
    fields = {}
    for part in body.split(b"\x00"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    return fields.get(b"M", "error")


def _packet(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class VerticaProbe:
    kind = DbKind.VERTICA

    async def check(
        self,
        *,
        host: str = "127.0.0.1",
        port: int,
        database: Database,
        password: Secret | None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> AsyncIterator[StepResult]:
        clock = StepClock("db-tls", password)
        try:
            raw = database.option("tls") or database.option("sslmode") or database.option("ssl")
            mode = parse_mode(raw, TlsMode.PREFER)
        except TlsOptionError as exc:
            yield clock.fail(str(exc), "use tls=true|false or sslmode=disable..verify-full")
            return
        cafile = database.option("sslrootcert")
        cafile = os.path.expanduser(cafile) if cafile else None
        ctx = make_context(mode, cafile=cafile, server_name=database.host)
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            yield clock.fail(f"TCP connect to {host}:{port} failed: {first_line(exc)}")
            return
        try:
            async for result in self._session(
                reader, writer, clock, mode, ctx, cafile, database, password, timeout, name
            ):
                yield result
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, TimeoutError, ssl.SSLError):
                pass

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        clock: StepClock,
        mode: TlsMode,
        ctx: ssl.SSLContext,
        cafile: str | None,
        database: Database,
        password: Secret | None,
        timeout: float,
        name: str | None,
    ) -> AsyncIterator[StepResult]:
        try:
            async with asyncio.timeout(timeout):
                writer.write(_SSL_REQUEST)
                await writer.drain()
                answer = await reader.readexactly(1)
                if answer not in (b"S", b"N"):
                    raise ProtocolError(f"unexpected answer {answer!r} to SSLRequest")
                tls = answer == b"S" and mode > TlsMode.DISABLE
                if tls:
                    await writer.start_tls(ctx, server_hostname=database.host or None)
        except ssl.SSLError as exc:
            yield clock.fail(
                verify_failure(exc, mode, cafile, database.host),
                "check sslrootcert and the server certificate, or lower sslmode",
            )
            return
        except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as exc:
            yield clock.fail(
                f"the server on the tunnel does not speak the Vertica protocol: "
                f"{first_line(exc) or 'no answer to SSLRequest'}",
                "check that the target is Vertica's client port (5433)",
            )
            return
        if answer == b"N" and mode >= TlsMode.REQUIRE:
            yield clock.fail(
                f"the server does not offer TLS but sslmode={mode.label}",
                "enable TLS on the server or lower the TLS option in the URL",
            )
            return
        if tls:
            described = negotiated(
                writer.get_extra_info("ssl_object"), mode, cafile, database.host
            ).describe()
            yield clock.ok(f"protocol answer 'S' to SSLRequest; {described}")
        else:
            yield clock.ok(f"protocol answer {answer.decode()!r} to SSLRequest; TLS not used")

        clock = StepClock("db-auth", password)
        user = database.user or "dbadmin"
        params = [("user", user)]  # only what both Vertica and PostgreSQL accept
        if database.database:
            params.append(("database", database.database))
        body = struct.pack("!i", PROTOCOL_VERSION)
        body += b"".join(k.encode() + b"\x00" + v.encode() + b"\x00" for k, v in params) + b"\x00"
        try:
            async with asyncio.timeout(timeout):
                writer.write(struct.pack("!i", len(body) + 4) + body)
                await writer.drain()
                outcome = await _authenticate(reader, writer, user, password)
        except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as exc:
            yield clock.fail(f"no answer to the startup packet: {first_line(exc)}")
            return
        kind, detail = outcome
        if kind == "error":
            hint = password_hint(user, name, password) if "password" in detail.lower() else None
            yield clock.fail(detail, hint)
            return
        if kind == "unverified":
            yield clock.skip(detail)
            clock = StepClock("query", password)
            yield clock.skip("not run: not logged in (the password could not be verified here)")
            return
        yield clock.ok(detail)

        clock = StepClock("query", password)
        try:
            async with asyncio.timeout(timeout):
                version = await _simple_query(reader, writer, "SELECT version()")
        except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as exc:
            yield clock.fail(f"SELECT version() failed: {first_line(exc)}")
            return
        yield clock.ok(f"SELECT version() ok; server_version {version}")


async def _authenticate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    user: str,
    password: Secret | None,
) -> tuple[str, str]:
    """("ok" | "error" | "unverified", words) after the startup packet."""
    method = "no password"
    for _ in range(50):
        kind, body = await _message(reader)
        if kind == b"E":
            return "error", f"the server refused user {user}: {_error_fields(body)}"
        if kind == b"v":  # NegotiateProtocolVersion: the server answers with a lower one
            continue
        if kind == b"R":
            code = struct.unpack("!i", body[:4])[0]
            if code == 0:
                continue  # AuthenticationOk; wait for ReadyForQuery
            if code == 3:
                method = "cleartext password"
                secret = password.reveal() if password else ""
                writer.write(_packet(b"p", secret.encode() + b"\x00"))
            elif code == 5:
                method = "MD5 password"
                secret = password.reveal() if password else ""
                inner = hashlib.md5((secret + user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                writer.write(_packet(b"p", b"md5" + outer.encode() + b"\x00"))
            else:
                label = _AUTH_NAMES.get(code, f"method {code}")
                return "unverified", (
                    f"the server accepted the startup for user {user} and asked for {label} "
                    "authentication; the password itself was not verified (no Vertica client "
                    "library)"
                )
            await writer.drain()
            continue
        if kind == b"Z":
            return "ok", f"logged in as {user} ({method})"
        # ParameterStatus, BackendKeyData, notices: nothing to do.
    raise ProtocolError("too many messages before ReadyForQuery")


async def _simple_query(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sql: str
) -> str:
    writer.write(_packet(b"Q", sql.encode() + b"\x00"))
    await writer.drain()
    value = ""
    for _ in range(50):
        kind, body = await _message(reader)
        if kind == b"E":
            raise ProtocolError(_error_fields(body))
        if kind == b"D":
            (count,) = struct.unpack("!h", body[:2])
            if count >= 1:
                (size,) = struct.unpack("!i", body[2:6])
                value = body[6 : 6 + size].decode("utf-8", "replace") if size >= 0 else ""
        if kind == b"Z":
            return value
    raise ProtocolError("too many messages before ReadyForQuery")


PROBE = VerticaProbe()
