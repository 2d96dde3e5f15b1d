"""ClickHouse probe over its HTTP interface (no driver needed).

db-tls: with `secure=true` the HTTPS handshake is completed (CA from `ca_certs`
or `sslrootcert`, certificate checked for the database's host unless
`verify=false`); otherwise plain HTTP is reported. A port that answers plain
HTTP instead of TLS is named as such, whether the server rejects the TLS hello
or sits waiting for a request line (see `http.open_tls`). db-auth: `SELECT 1` with the
`X-ClickHouse-User`/`X-ClickHouse-Key` headers; ClickHouse's error code tells a
wrong password or unknown user (192, 193, 516) from an unknown database (81).
query: `SELECT version()`.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import AsyncIterator
from urllib.parse import quote, urlencode

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.probes import http
from tunnel_tui.probes.base import StepClock, first_line, password_hint
from tunnel_tui.probes.tls import (
    TlsMode,
    TlsOptionError,
    make_context,
    negotiated,
    parse_mode,
    verify_failure,
)

_CODE = re.compile(r"Code:\s*(\d+)")
AUTH_CODES = {192, 193, 194, 516}  # UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTH_FAILED
UNKNOWN_DATABASE = 81
PORTS_HINT = "8443 is HTTPS, 8123 plain HTTP"


def error_code(body: str) -> int | None:
    match = _CODE.search(body)
    return int(match.group(1)) if match else None


def _error_text(body: str) -> str:
    text = body.strip().splitlines()[0] if body.strip() else "(empty answer)"
    # Drop the server's stack trace noise; keep the first sentence.
    return text.split(", Stack trace")[0][:300]


class ClickHouseProbe:
    kind = DbKind.CLICKHOUSE

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
            mode = parse_mode(database.option("secure"), TlsMode.DISABLE)
            if mode > TlsMode.DISABLE:
                verify = parse_mode(database.option("verify"), TlsMode.VERIFY_FULL)
                mode = TlsMode.VERIFY_FULL if verify > TlsMode.DISABLE else TlsMode.REQUIRE
        except TlsOptionError as exc:
            yield clock.fail(str(exc), "use secure=true|false and verify=true|false")
            return
        cafile = database.option("ca_certs") or database.option("sslrootcert")
        cafile = os.path.expanduser(cafile) if cafile else None
        ctx: ssl.SSLContext | None = None
        if mode == TlsMode.DISABLE:
            yield clock.ok("plain HTTP (secure not set)")
        else:
            ctx = make_context(mode, cafile=cafile, server_name=database.host)
            try:
                async with asyncio.timeout(timeout):
                    reader, writer = await http.open_tls(host, port, ctx, database.host)
                    described = negotiated(http.tls_info(writer), mode, cafile, database.host)
                    await http.close(writer)
            except http.PlainHttpPort as exc:
                yield clock.fail(
                    f"secure=true but {exc}",
                    f"use ClickHouse's HTTPS port ({PORTS_HINT}) or drop secure=true",
                )
                return
            except ssl.SSLError as exc:
                yield clock.fail(
                    verify_failure(exc, mode, cafile, database.host),
                    f"check ca_certs and the server certificate (or the port: {PORTS_HINT})",
                )
                return
            except (OSError, TimeoutError) as exc:
                reason = first_line(exc)
                yield clock.fail(f"no TLS answer on {host}:{port}: {reason}")
                return
            yield clock.ok(f"HTTPS: {described.describe()}")

        user = database.user or "default"
        headers = {"X-ClickHouse-User": user}
        if password:
            headers["X-ClickHouse-Key"] = password.reveal()

        async def run(sql: str) -> http.Response:
            params = {"query": sql}
            if database.database:
                params["database"] = database.database
            async with asyncio.timeout(timeout):
                reader, writer = await http.open_stream(host, port, ctx, database.host)
                try:
                    return await http.request(
                        reader,
                        writer,
                        "GET",
                        "/?" + urlencode(params, quote_via=quote),
                        host_header=database.host,
                        headers=headers,
                    )
                finally:
                    await http.close(writer)

        clock = StepClock("db-auth", password)
        try:
            response = await run("SELECT 1")
        except (OSError, TimeoutError, ssl.SSLError, http.HttpProtocolError) as exc:
            yield clock.fail(
                f"no ClickHouse HTTP answer: {first_line(exc)}",
                "check that the target is ClickHouse's HTTP port (8123, or 8443 with secure=true)",
            )
            return
        if response.status != 200:
            code = error_code(response.text)
            if code in AUTH_CODES or response.status in (401, 403) and code is None:
                yield clock.fail(
                    f"user {user} rejected (HTTP {response.status}, code {code})",
                    password_hint(user, name, password),
                )
            elif code == UNKNOWN_DATABASE:
                yield clock.fail(
                    _error_text(response.text),
                    f"database {database.database!r} does not exist on the server: fix the "
                    "database name in the URL",
                )
            else:
                yield clock.fail(f"HTTP {response.status}: {_error_text(response.text)}")
            return
        yield clock.ok(f"user {user} accepted (X-ClickHouse-User/Key)")

        clock = StepClock("query", password)
        try:
            response = await run("SELECT version()")
        except (OSError, TimeoutError, ssl.SSLError, http.HttpProtocolError) as exc:
            yield clock.fail(f"SELECT version() failed: {first_line(exc)}")
            return
        if response.status != 200:
            yield clock.fail(f"HTTP {response.status}: {_error_text(response.text)}")
            return
        yield clock.ok(f"SELECT 1 ok; server_version ClickHouse {response.text.strip()}")


PROBE = ClickHouseProbe()
