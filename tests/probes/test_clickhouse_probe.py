"""ClickHouse probe against a real clickhouse-server (HTTP and HTTPS), plus two
small real plain-HTTP servers that show the ways such a server can meet a TLS hello."""

from __future__ import annotations

import pytest

from tests.probes.helpers import plain_http_server, run_probe, statuses
from tunnel_tui.core.model import DbKind

CH = DbKind.CLICKHOUSE


async def test_ok_over_http(clickhouse) -> None:
    results = await run_probe(
        CH, clickhouse.http_port, user=clickhouse.user, password=clickhouse.password
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    assert results["db-tls"].detail == "plain HTTP (secure not set)"
    assert "ClickHouse 18." in results["query"].detail or "ClickHouse 2" in results["query"].detail


async def test_wrong_password(clickhouse) -> None:
    results = await run_probe(CH, clickhouse.http_port, user=clickhouse.user, password="nope-x")
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    assert "the database rejected user app: check the password" in (results["db-auth"].hint or "")


async def test_unknown_database(clickhouse) -> None:
    results = await run_probe(
        CH,
        clickhouse.http_port,
        user=clickhouse.user,
        password=clickhouse.password,
        database="nosuchdb",
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    assert "nosuchdb" in results["db-auth"].detail


async def test_https_verified_with_the_ca(clickhouse) -> None:
    results = await run_probe(
        CH,
        clickhouse.https_port,
        user=clickhouse.user,
        password=clickhouse.password,
        options={"secure": "true", "ca_certs": str(clickhouse.ca_cert_path)},
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    assert "TLSv1." in results["db-tls"].detail and "verified against" in results["db-tls"].detail


async def test_https_self_signed_without_ca_fails_unless_verify_false(clickhouse) -> None:
    common = dict(user=clickhouse.user, password=clickhouse.password)
    strict = await run_probe(CH, clickhouse.https_port, options={"secure": "true"}, **common)
    assert statuses(strict) == {"db-tls": "fail"}
    relaxed = await run_probe(
        CH, clickhouse.https_port, options={"secure": "true", "verify": "false"}, **common
    )
    assert statuses(relaxed)["query"] == "ok"
    assert "not verified" in relaxed["db-tls"].detail


async def test_secure_on_the_plain_port_fails_at_tls(clickhouse) -> None:
    # ClickHouse mostly answers a TLS hello with "400 Bad Request" at once, but was
    # once seen waiting for a request line instead; either way the hint must come.
    results = await run_probe(
        CH,
        clickhouse.http_port,
        user=clickhouse.user,
        password=clickhouse.password,
        options={"secure": "true", "verify": "false"},
    )
    assert statuses(results) == {"db-tls": "fail"}
    assert "8443 is HTTPS" in (results["db-tls"].hint or "")


@pytest.mark.parametrize("on_tls_hello", ["wait", "close"])
async def test_secure_on_a_plain_http_port_is_named_without_waiting_for_the_timeout(
    on_tls_hello: str,
) -> None:
    timeout = 30.0
    async with plain_http_server(on_tls_hello) as port:
        results = await run_probe(
            CH, port, user="app", options={"secure": "true", "verify": "false"}, timeout=timeout
        )
    assert statuses(results) == {"db-tls": "fail"}
    tls = results["db-tls"]
    assert "answers plain HTTP, not TLS" in tls.detail
    assert "8443 is HTTPS" in (tls.hint or "")
    # Found by a plain request alongside the silent handshake, not by the timeout.
    assert tls.elapsed_ms < timeout * 1000 / 3


async def test_a_tls_port_that_refuses_the_handshake_is_not_called_plain_http() -> None:
    async with plain_http_server("tls") as port:
        results = await run_probe(CH, port, options={"secure": "true", "verify": "false"})
    assert statuses(results) == {"db-tls": "fail"}
    assert "TLS handshake failed" in results["db-tls"].detail
    assert "plain HTTP, not TLS" not in results["db-tls"].detail
