"""Trino probe: what is checked is the coordinator's HTTP API, not a query.

db-tls: with `ssl=true` (or `secure=true`) the HTTPS handshake under the usual
verification (CA from `sslrootcert`, `verify=false` to skip it); a port that speaks
plain HTTP is named as such at once, not after the timeout (`http.open_tls`). db-auth is
*not* checked — Trino authenticates each query and no client library is used
here — so it is reported `skip` with that explanation (a password over plain
HTTP is refused as Trino itself would). query: `GET /v1/info` must answer JSON
from a started Trino (`starting: false`); the node version is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.probes import http
from tunnel_tui.probes.base import StepClock, first_line
from tunnel_tui.probes.tls import (
    TlsMode,
    TlsOptionError,
    make_context,
    negotiated,
    parse_mode,
    verify_failure,
)


class TrinoProbe:
    kind = DbKind.TRINO

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
            mode = parse_mode(database.option("ssl") or database.option("secure"), TlsMode.DISABLE)
            if mode > TlsMode.DISABLE:
                verify = parse_mode(database.option("verify"), TlsMode.VERIFY_FULL)
                mode = TlsMode.VERIFY_FULL if verify > TlsMode.DISABLE else TlsMode.REQUIRE
        except TlsOptionError as exc:
            yield clock.fail(str(exc), "use ssl=true|false and verify=true|false")
            return
        cafile = database.option("sslrootcert")
        cafile = os.path.expanduser(cafile) if cafile else None
        ctx: ssl.SSLContext | None = None
        if mode == TlsMode.DISABLE:
            yield clock.ok("plain HTTP (ssl not set)")
        else:
            ctx = make_context(mode, cafile=cafile, server_name=database.host)
            try:
                async with asyncio.timeout(timeout):
                    reader, writer = await http.open_tls(host, port, ctx, database.host)
                    described = negotiated(http.tls_info(writer), mode, cafile, database.host)
                    await http.close(writer)
            except http.PlainHttpPort as exc:
                yield clock.fail(
                    f"ssl=true but {exc}",
                    "use the coordinator's HTTPS port (http-server.https.port, often 8443) "
                    "or drop ssl=true",
                )
                return
            except ssl.SSLError as exc:
                yield clock.fail(
                    verify_failure(exc, mode, cafile, database.host),
                    "check sslrootcert and the coordinator's certificate",
                )
                return
            except (OSError, TimeoutError) as exc:
                reason = first_line(exc)
                yield clock.fail(f"no TLS answer on {host}:{port}: {reason}")
                return
            yield clock.ok(f"HTTPS: {described.describe()}")

        clock = StepClock("db-auth", password)
        if password and ctx is None:
            yield clock.fail(
                "a password is set but the connection is plain HTTP",
                "Trino accepts passwords only over HTTPS: add ssl=true to the URL",
            )
            return
        yield clock.skip(
            "not checked: Trino authenticates each query and tunnel-tui does not run one "
            "(no Trino client library); the coordinator's /v1/info is checked next"
        )

        clock = StepClock("query", password)
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await http.open_stream(host, port, ctx, database.host)
                try:
                    response = await http.request(
                        reader,
                        writer,
                        "GET",
                        "/v1/info",
                        host_header=database.host,
                        headers={"Accept": "application/json"},
                    )
                finally:
                    await http.close(writer)
        except (OSError, TimeoutError, ssl.SSLError, http.HttpProtocolError) as exc:
            yield clock.fail(
                f"no Trino HTTP answer: {first_line(exc)}",
                "check that the target is the Trino coordinator's HTTP port (8080)",
            )
            return
        try:
            info = json.loads(response.body) if response.status == 200 else None
        except ValueError:
            info = None
        if not isinstance(info, dict) or "nodeVersion" not in info:
            yield clock.fail(
                f"GET /v1/info answered HTTP {response.status} without Trino's node info",
                "check that the target is a Trino coordinator",
            )
            return
        version = str((info.get("nodeVersion") or {}).get("version", "?"))
        if info.get("starting"):
            yield clock.fail(f"Trino {version} is still starting", "try again in a minute")
            return
        role = "coordinator" if info.get("coordinator") else "worker"
        env = info.get("environment")
        where = f", environment {env}" if env else ""
        yield clock.ok(
            f"GET /v1/info ok (no SQL run); server_version Trino {version} {role}{where}"
        )


PROBE = TrinoProbe()
