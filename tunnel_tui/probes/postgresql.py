"""PostgreSQL probe (asyncpg).

db-tls: a separate connection sends PostgreSQL's SSLRequest, reads the server's
'S'/'N' and, when TLS is to be used, completes the handshake under the
connection's `sslmode` (disable/allow/prefer/require/verify-ca/verify-full, libpq
semantics; default prefer) with `sslrootcert` as CA; the step reports the version,
cipher and what was verified. db-auth: asyncpg logs in with the same TLS decision.
query: `SELECT 1` and `server_version`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

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

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _cafile(database: Database) -> str | None:
    explicit = database.option("sslrootcert")
    if explicit:
        return os.path.expanduser(explicit)
    default = Path.home() / ".postgresql" / "root.crt"  # libpq's default
    return str(default) if default.is_file() else None


class PostgresProbe:
    kind = DbKind.POSTGRESQL

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
            mode = parse_mode(database.option("sslmode"), TlsMode.PREFER)
        except TlsOptionError as exc:
            yield clock.fail(
                str(exc), "use sslmode=disable|allow|prefer|require|verify-ca|verify-full"
            )
            return
        cafile = _cafile(database)
        if mode >= TlsMode.VERIFY_CA and not cafile:
            yield clock.fail(
                f"sslmode={mode.label} needs the CA certificate that signed the server's",
                "add sslrootcert=/path/to/ca.pem to the database URL",
            )
            return
        if cafile and not os.path.isfile(cafile):
            yield clock.fail(
                f"sslrootcert {cafile} does not exist", "fix the sslrootcert path in the URL"
            )
            return
        ctx = make_context(mode, cafile=cafile, server_name=database.host)
        use_tls: ssl.SSLContext | None = None
        if mode == TlsMode.DISABLE:
            yield clock.ok("not used (sslmode=disable)")
        else:
            try:
                async with asyncio.timeout(timeout):
                    offered, described = await _tls_handshake(
                        host, port, ctx, mode, cafile, database.host
                    )
            except ssl.SSLError as exc:
                yield clock.fail(
                    verify_failure(exc, mode, cafile, database.host),
                    "check sslrootcert and the server certificate, or lower sslmode",
                )
                return
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                yield clock.fail(*no_answer("PostgreSQL", database, exc, timeout))
                return
            if not offered:
                if mode >= TlsMode.REQUIRE:
                    yield clock.fail(
                        f"the server does not offer TLS but sslmode={mode.label}",
                        "enable ssl on the server (ssl = on) or lower sslmode in the URL",
                    )
                    return
                yield clock.ok(
                    f"the server offers no TLS; continuing without (sslmode={mode.label})"
                )
            elif mode == TlsMode.ALLOW:
                yield clock.ok(f"plain first (sslmode=allow); server also offers {described}")
            else:
                use_tls = ctx
                yield clock.ok(described)

        clock = StepClock("db-auth", password)
        user = database.user or "postgres"
        try:
            conn = await _connect(host, port, database, user, password, use_tls, timeout)
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            message = first_line(exc)
            if mode == TlsMode.ALLOW and use_tls is None and "no encryption" in message:
                # libpq's allow: retry with TLS when the server demands it.
                try:
                    conn = await _connect(host, port, database, user, password, ctx, timeout)
                except asyncpg.PostgresError as exc2:
                    yield _auth_failure(clock, exc2, user, database, name, password)
                    return
                use_tls = ctx
            else:
                yield _auth_failure(clock, exc, user, database, name, password)
                return
        except asyncpg.PostgresError as exc:
            yield _auth_failure(clock, exc, user, database, name, password)
            return
        except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            yield clock.fail(f"login failed: {first_line(exc)}", None)
            return
        try:
            via = " over TLS" if use_tls is not None else ""
            yield clock.ok(f"logged in as {user} to {database.database or user}{via}")

            clock = StepClock("query", password)
            try:
                async with asyncio.timeout(timeout):
                    one = await conn.fetchval("SELECT 1")
                    version = await conn.fetchval("SHOW server_version")
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                yield clock.fail(f"SELECT 1 failed: {first_line(exc)}")
                return
            if one != 1:
                yield clock.fail(f"SELECT 1 returned {one!r}")
                return
            yield clock.ok(f"SELECT 1 ok; server_version PostgreSQL {version}")
        finally:
            await _close(conn)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


async def _connect(
    host: str,
    port: int,
    database: Database,
    user: str,
    password: Secret | None,
    ctx: ssl.SSLContext | None,
    timeout: float,
) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=host,
        port=port,
        user=user,
        password=password.reveal() if password else None,
        database=database.database or None,
        ssl=ctx if ctx is not None else False,
        timeout=timeout,
        statement_cache_size=0,
    )


async def _tls_handshake(
    host: str, port: int, ctx: ssl.SSLContext, mode: TlsMode, cafile: str | None, name: str
) -> tuple[bool, str]:
    """(server offers TLS, description of the handshake) from a throwaway connection."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_SSL_REQUEST)
        await writer.drain()
        answer = await reader.readexactly(1)
        if answer != b"S":
            return False, ""
        await writer.start_tls(ctx, server_hostname=name or None)
        ssl_object = writer.get_extra_info("ssl_object")
        return True, negotiated(ssl_object, mode, cafile, name).describe()
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


def _auth_failure(
    clock: StepClock,
    exc: asyncpg.PostgresError,
    user: str,
    database: Database,
    name: str | None,
    password: Secret | None,
) -> StepResult:
    message = first_line(exc)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return clock.fail(f"password rejected for user {user}", password_hint(user, name, password))
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return clock.fail(
            message,
            f"database {database.database!r} does not exist on the server: fix the database "
            "name in the URL",
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        if "pg_hba" in message:
            return clock.fail(
                message,
                "the server's pg_hba.conf has no line for this user, database and client "
                "address (the bastion's, as the server sees it): ask its administrator to add one",
            )
        if "does not exist" in message:
            return clock.fail(message, f"the role {user} does not exist: fix the user in the URL")
        return clock.fail(message, password_hint(user, name, password))
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        return clock.fail(message, "the server is at max_connections: try again later")
    return clock.fail(f"login failed: {message}", None)


PROBE = PostgresProbe()
