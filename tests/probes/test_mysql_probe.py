"""MySQL/MariaDB probe against real private MariaDB servers (straight to the port)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import mariadb as mariadb_fixtures
from tests.harness_tls import TlsFiles, make_server_cert
from tests.probes.helpers import run_probe, statuses
from tunnel_tui.core.model import DbKind

MY = DbKind.MYSQL


@pytest.fixture
def mariadb_tls(_mariadb_template) -> Iterator[tuple[mariadb_fixtures.MariadbServer, TlsFiles]]:
    """The fixture's MariaDB, started with TLS on (the shared fixture runs --skip-ssl)."""
    server = mariadb_fixtures.MariadbServer(_mariadb_template)
    files = make_server_cert(server.root)
    opts = [o for o in mariadb_fixtures.SERVER_OPTS if o != "--skip-ssl"]
    try:
        server.proc = subprocess.Popen(
            [_mariadb_template.mariadbd, *opts, f"--datadir={server.data}",
             f"--socket={server.socket}", f"--port={server.port}", "--bind-address=127.0.0.1",
             "--skip-networking=0", f"--log-error={server.log_path}",
             f"--pid-file={server.root / 'mariadbd.pid'}", f"--ssl-ca={files.ca_cert}",
             f"--ssl-cert={files.cert}", f"--ssl-key={files.key}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        mariadb_fixtures._wait_ready(server.proc, server.log_path, 0, 60)
        yield server, files
    finally:
        server.close()


async def test_ok_reports_version(mariadb) -> None:
    results = await run_probe(
        MY, mariadb.port, user=mariadb.user, database=mariadb.database, password=mariadb.password
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    assert "offers no TLS" in results["db-tls"].detail
    assert "MariaDB 10." in results["query"].detail


async def test_wrong_password_is_1045_with_the_fix(mariadb) -> None:
    results = await run_probe(
        MY,
        mariadb.port,
        user=mariadb.user,
        database=mariadb.database,
        password="not-" + mariadb.password,
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    assert "1045" in results["db-auth"].detail
    assert "the database rejected user app: check the password" in (results["db-auth"].hint or "")
    assert "tunnel-tui edit mydb --db-password-stdin" in (results["db-auth"].hint or "")


async def test_unknown_database(mariadb) -> None:
    results = await run_probe(
        MY, mariadb.port, user=mariadb.user, database="nosuchdb", password=mariadb.password
    )
    assert results["db-auth"].status.value == "fail"
    assert "nosuchdb" in results["db-auth"].detail + (results["db-auth"].hint or "")


async def test_tls_required_but_server_has_none(mariadb) -> None:
    results = await run_probe(
        MY,
        mariadb.port,
        user=mariadb.user,
        password=mariadb.password,
        options={"ssl-mode": "REQUIRED"},
    )
    assert statuses(results) == {"db-tls": "fail"}
    assert "does not offer TLS" in results["db-tls"].detail


async def test_tls_verify_identity_with_the_ca(mariadb_tls, tmp_path: Path) -> None:
    server, files = mariadb_tls
    common = dict(user=server.user, database=server.database, password=server.password)
    results = await run_probe(
        MY,
        server.port,
        options={"ssl-mode": "VERIFY_IDENTITY", "ssl-ca": str(files.ca_cert)},
        **common,
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    assert "TLSv1." in results["db-tls"].detail and "verified against" in results["db-tls"].detail
    assert "over TLS" in results["db-auth"].detail

    other = make_server_cert(tmp_path)
    wrong_ca = await run_probe(
        MY,
        server.port,
        options={"ssl-mode": "VERIFY_CA", "ssl-ca": str(other.ca_cert)},
        **common,
    )
    assert statuses(wrong_ca) == {"db-tls": "fail"}
    assert "not accepted" in wrong_ca["db-tls"].detail
