"""MySQL/MariaDB probe (aiomysql).

db-tls: a separate connection reads the server's greeting (version and whether
it offers TLS) and, when TLS is to be used, sends the protocol's SSLRequest and
completes the handshake under the connection's `ssl-mode` (DISABLED, PREFERRED —
the default, REQUIRED, VERIFY_CA, VERIFY_IDENTITY; libpq's sslmode names are
accepted too) with `ssl-ca` (or `sslrootcert`) as CA. db-auth: aiomysql logs in
with the same TLS decision; with TLS required the server's own `Ssl_cipher` must
be non-empty (aiomysql would otherwise fall back to plain text silently).
query: `SELECT 1` and `VERSION()`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiomysql
import pymysql

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.probes.base import StepClock, first_line, no_answer, password_hint
from tunnel_tui.probes.tls import (
    TlsMode,
    TlsOptionError,
    make_context,
    negotiated,
    parse_mode,
    verify_failure,
)

CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
_MAX_PACKET = 1 << 24


# MySQL's own spelling of each mode (its clients say PREFERRED, not libpq's prefer).
_MYSQL_MODES = {
    TlsMode.DISABLE: "DISABLED",
    TlsMode.ALLOW: "PREFERRED",
    TlsMode.PREFER: "PREFERRED",
    TlsMode.REQUIRE: "REQUIRED",
    TlsMode.VERIFY_CA: "VERIFY_CA",
    TlsMode.VERIFY_FULL: "VERIFY_IDENTITY",
}


def mysql_mode(mode: TlsMode) -> str:
    return _MYSQL_MODES[mode]


@dataclass(frozen=True)
class Greeting:
    server_version: str
    capabilities: int

    @property
    def offers_tls(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)


class ServerRefused(Exception):
    """The server sent an error packet instead of its greeting."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"error {code}: {message}")
        self.code = code


def _option(database: Database, *names: str) -> str | None:
    for name in names:
        value = database.option(name)
        if value:
            return value
    return None


async def read_greeting(reader: asyncio.StreamReader) -> Greeting:
    header = await reader.readexactly(4)
    length = int.from_bytes(header[:3], "little")
    payload = await reader.readexactly(length)
    if payload[:1] == b"\xff":
        code = int.from_bytes(payload[1:3], "little")
        # Pre-handshake error packets carry no SQLSTATE: code, then the message.
        raise ServerRefused(code, payload[3:].decode("utf-8", "replace"))
    if payload[0] != 10:
        raise ValueError(f"not a MySQL greeting (protocol byte {payload[0]})")
    end = payload.index(b"\x00", 1)
    version = payload[1:end].decode("utf-8", "replace")
    pos = end + 1 + 4 + 8 + 1  # connection id, auth data part 1, filler
    caps = int.from_bytes(payload[pos : pos + 2], "little")
    if len(payload) >= pos + 2 + 1 + 2 + 2:
        caps |= int.from_bytes(payload[pos + 5 : pos + 7], "little") << 16
    return Greeting(version, caps)


class MySqlProbe:
    kind = DbKind.MYSQL

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
            mode = parse_mode(_option(database, "ssl-mode", "ssl_mode", "sslmode"), TlsMode.PREFER)
        except TlsOptionError as exc:
            yield clock.fail(
                str(exc), "use ssl-mode=DISABLED|PREFERRED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY"
            )
            return
        cafile = _option(database, "ssl-ca", "ssl_ca", "sslrootcert")
        cafile = os.path.expanduser(cafile) if cafile else None
        if mode >= TlsMode.VERIFY_CA and not cafile:
            yield clock.fail(
                f"ssl-mode={mysql_mode(mode)} needs the CA certificate that signed the server's",
                "add ssl-ca=/path/to/ca.pem to the database URL",
            )
            return
        if cafile and not os.path.isfile(cafile):
            yield clock.fail(f"ssl-ca {cafile} does not exist", "fix the ssl-ca path in the URL")
            return
        ctx = make_context(mode, cafile=cafile, server_name=database.host)
        try:
            async with asyncio.timeout(timeout):
                greeting, described = await _tls_handshake(
                    host, port, ctx if mode > TlsMode.DISABLE else None, mode, cafile, database.host
                )
        except ServerRefused as exc:
            yield clock.fail(
                f"the server refused the connection: {exc}",
                "the server does not accept this client address (the bastion's): ask its "
                "administrator to allow it"
                if exc.code == 1130
                else None,
            )
            return
        except ssl.SSLError as exc:
            yield clock.fail(
                verify_failure(exc, mode, cafile, database.host),
                "check ssl-ca and the server certificate, or lower ssl-mode",
            )
            return
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
            yield clock.fail(*no_answer("MySQL/MariaDB", database, exc, timeout))
            return
        use_tls: ssl.SSLContext | None = None
        if mode == TlsMode.DISABLE:
            yield clock.ok(f"not used (ssl-mode=DISABLED); server {greeting.server_version}")
        elif not greeting.offers_tls:
            if mode >= TlsMode.REQUIRE:
                yield clock.fail(
                    f"the server does not offer TLS but ssl-mode={mysql_mode(mode)}",
                    "enable TLS on the server (ssl_cert/ssl_key) or lower ssl-mode in the URL",
                )
                return
            yield clock.ok(
                f"the server offers no TLS; continuing without (ssl-mode={mysql_mode(mode)})"
            )
        else:
            use_tls = ctx
            yield clock.ok(described)

        clock = StepClock("db-auth", password)
        user = database.user or "root"
        try:
            async with asyncio.timeout(timeout + 1):
                conn = await aiomysql.connect(
                    host=host,
                    port=port,
                    user=user,
                    password=password.reveal() if password else "",
                    db=database.database or None,
                    ssl=use_tls,
                    connect_timeout=timeout,
                    autocommit=True,
                )
        except pymysql.err.MySQLError as exc:
            yield _auth_failure(clock, exc, user, database, name, password)
            return
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            yield clock.fail(f"login failed: {first_line(exc)}")
            return
        try:
            if use_tls is not None:
                cipher = await _server_cipher(conn)
                if not cipher:
                    yield clock.fail(
                        "logged in, but the session is not encrypted",
                        "the server dropped TLS: check its TLS configuration",
                    )
                    return
            via = " over TLS" if use_tls is not None else ""
            yield clock.ok(f"logged in as {user} to {database.database or '(no database)'}{via}")

            clock = StepClock("query", password)
            try:
                async with asyncio.timeout(timeout):
                    async with conn.cursor() as cur:
                        await cur.execute("SELECT 1")
                        (one,) = await cur.fetchone()
                        await cur.execute("SELECT VERSION()")
                        (version,) = await cur.fetchone()
            except (pymysql.err.MySQLError, OSError, TimeoutError) as exc:
                yield clock.fail(f"SELECT 1 failed: {first_line(exc)}")
                return
            if one != 1:
                yield clock.fail(f"SELECT 1 returned {one!r}")
                return
            flavour = "MariaDB" if "mariadb" in str(version).lower() else "MySQL"
            yield clock.ok(f"SELECT 1 ok; server_version {flavour} {version}")
        finally:
            conn.close()


async def _server_cipher(conn: aiomysql.Connection) -> str:
    async with conn.cursor() as cur:
        await cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = await cur.fetchone()
    return str(row[1]) if row else ""


async def _tls_handshake(
    host: str,
    port: int,
    ctx: ssl.SSLContext | None,
    mode: TlsMode,
    cafile: str | None,
    name: str,
) -> tuple[Greeting, str]:
    """The server's greeting and, when TLS is wanted and offered, the handshake's
    description, from a throwaway connection."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        greeting = await read_greeting(reader)
        if ctx is None or not greeting.offers_tls:
            return greeting, ""
        caps = CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION
        body = struct.pack("<IIB23x", caps, _MAX_PACKET, 45)  # 45: utf8mb4_general_ci
        writer.write(len(body).to_bytes(3, "little") + b"\x01" + body)
        await writer.drain()
        await writer.start_tls(ctx, server_hostname=name or None)
        ssl_object = writer.get_extra_info("ssl_object")
        return greeting, negotiated(ssl_object, mode, cafile, name).describe()
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


def _auth_failure(
    clock: StepClock,
    exc: pymysql.err.MySQLError,
    user: str,
    database: Database,
    name: str | None,
    password: Secret | None,
) -> StepResult:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    message = str(exc.args[1]) if len(exc.args) > 1 else first_line(exc)
    if code == 1045:
        return clock.fail(
            f"access denied for user {user} (error 1045)", password_hint(user, name, password)
        )
    if code == 1049:
        return clock.fail(
            message,
            f"database {database.database!r} does not exist on the server: fix the database "
            "name in the URL",
        )
    if code == 1044:
        return clock.fail(message, f"user {user} may not use database {database.database!r}")
    if code == 1130:
        return clock.fail(
            message,
            f"the server has no account {user}@<the bastion's address>: ask its administrator",
        )
    return clock.fail(f"login failed: {message}")


PROBE = MySqlProbe()
