"""Trino and Vertica probes. No Trino or Vertica server exists in the package
registries here, so:

- Trino: against a small real HTTP server written here that answers `GET /v1/info`
  the way a Trino coordinator does (the probe checks TLS and /v1/info only: no SQL).
- Vertica: against a real PostgreSQL server, which speaks the same v3 protocol
  subset the probe uses (SSLRequest, startup packet, cleartext/MD5 password, simple
  query); a SCRAM server shows the "asked for … authentication, not verified" path.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness_tls import make_server_cert
from tests.probes.helpers import plain_http_server, run_probe, statuses
from tunnel_tui.core.model import DbKind


class FakeTrino:
    """An HTTP/1.x server answering /v1/info like a Trino coordinator."""

    def __init__(self, info: dict[str, object] | None, ssl_ctx: ssl.SSLContext | None = None):
        self.info = info
        self.ssl_ctx = ssl_ctx
        self.paths: list[str] = []
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            self.paths.append(path)
            if path == "/v1/info" and self.info is not None:
                body, status = json.dumps(self.info).encode(), "200 OK"
            else:
                body, status = b"Not Found", "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> FakeTrino:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_ctx)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


INFO = {
    "nodeVersion": {"version": "435"},
    "environment": "prod",
    "coordinator": True,
    "starting": False,
    "uptime": "1.00h",
}


@pytest.fixture
async def trino() -> AsyncIterator[FakeTrino]:
    async with FakeTrino(INFO) as server:
        yield server


async def test_trino_info_checked_auth_not_claimed(trino: FakeTrino) -> None:
    results = await run_probe(DbKind.TRINO, trino.port, user="alice")
    assert statuses(results) == {"db-tls": "ok", "db-auth": "skip", "query": "ok"}
    assert "not checked" in results["db-auth"].detail
    assert "Trino 435 coordinator, environment prod" in results["query"].detail
    assert "no SQL run" in results["query"].detail
    assert trino.paths == ["/v1/info"]


async def test_trino_password_over_plain_http_is_refused(trino: FakeTrino) -> None:
    results = await run_probe(DbKind.TRINO, trino.port, user="alice", password="pw-123456")
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    assert "ssl=true" in (results["db-auth"].hint or "")


async def test_trino_starting_and_not_trino() -> None:
    async with FakeTrino({**INFO, "starting": True}) as starting:
        results = await run_probe(DbKind.TRINO, starting.port)
    assert results["query"].status.value == "fail" and "still starting" in results["query"].detail
    async with FakeTrino(None) as other:
        results = await run_probe(DbKind.TRINO, other.port)
    assert results["query"].status.value == "fail" and "HTTP 404" in results["query"].detail


async def test_trino_over_tls(tmp_path: Path) -> None:
    files = make_server_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(files.cert, files.key)
    async with FakeTrino(INFO, ctx) as server:
        results = await run_probe(
            DbKind.TRINO,
            server.port,
            user="alice",
            password="pw-123456",
            options={"ssl": "true", "sslrootcert": str(files.ca_cert)},
        )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "skip", "query": "ok"}
    assert "verified against" in results["db-tls"].detail


@pytest.mark.parametrize("on_tls_hello", ["wait", "close"])
async def test_trino_ssl_on_a_plain_http_port_is_named_without_waiting_for_the_timeout(
    on_tls_hello: str,
) -> None:
    timeout = 30.0
    async with plain_http_server(on_tls_hello) as port:
        results = await run_probe(
            DbKind.TRINO, port, user="alice", options={"ssl": "true", "verify": "false"},
            timeout=timeout,
        )
    assert statuses(results) == {"db-tls": "fail"}
    tls = results["db-tls"]
    assert "answers plain HTTP, not TLS" in tls.detail
    assert "HTTPS port" in (tls.hint or "")
    # Found by a plain request alongside the silent handshake, not by the timeout.
    assert tls.elapsed_ms < timeout * 1000 / 3


async def test_trino_on_a_non_http_port(echo_server) -> None:
    results = await run_probe(DbKind.TRINO, echo_server.port, timeout=2)
    assert results["query"].status.value == "fail"


async def test_vertica_protocol_against_cleartext_password_server(postgres_factory) -> None:
    server = postgres_factory()
    (server.data / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 127.0.0.1/32 password\n"
    )
    server.restart()
    common = dict(user=server.user, database=server.database)
    results = await run_probe(DbKind.VERTICA, server.port, password=server.password, **common)
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    assert "protocol answer 'N'" in results["db-tls"].detail
    assert "cleartext password" in results["db-auth"].detail
    assert "server_version PostgreSQL" in results["query"].detail

    wrong = await run_probe(DbKind.VERTICA, server.port, password="not-it-123", **common)
    assert statuses(wrong) == {"db-tls": "ok", "db-auth": "fail"}
    assert "check the password" in (wrong["db-auth"].hint or "")


async def test_vertica_unverifiable_auth_is_a_skip_not_an_ok(postgres) -> None:
    results = await run_probe(
        DbKind.VERTICA,
        postgres.port,
        user=postgres.user,
        database=postgres.database,
        password=postgres.password,
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "skip", "query": "skip"}
    assert "SASL/SCRAM" in results["db-auth"].detail
    assert "not verified" in results["db-auth"].detail


async def test_vertica_on_a_server_of_another_protocol(echo_server) -> None:
    results = await run_probe(DbKind.VERTICA, echo_server.port, timeout=2)
    assert statuses(results) == {"db-tls": "fail"}
    assert "does not speak the Vertica protocol" in results["db-tls"].detail
