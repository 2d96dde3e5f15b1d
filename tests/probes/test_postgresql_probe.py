"""PostgreSQL probe against real private PostgreSQL servers (connecting straight to
the server's port: the tunnel in front of it is the engine's business)."""

from __future__ import annotations

from pathlib import Path

from tests.harness_tls import make_server_cert
from tests.probes.helpers import run_probe, statuses
from tunnel_tui.core.model import DbKind
from tunnel_tui.probes.base import probe_for
from tunnel_tui.probes.postgresql import PostgresProbe

PG = DbKind.POSTGRESQL


def test_probe_for_every_kind() -> None:
    assert isinstance(probe_for(PG), PostgresProbe)
    for kind in DbKind:
        assert probe_for(kind).kind is kind


async def test_ok_reports_version(postgres) -> None:
    results = await run_probe(
        PG,
        postgres.port,
        user=postgres.user,
        database=postgres.database,
        password=postgres.password,
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    assert "offers no TLS" in results["db-tls"].detail  # default sslmode=prefer
    assert "PostgreSQL 1" in results["query"].detail
    assert f"logged in as {postgres.user}" in results["db-auth"].detail


async def test_wrong_password_names_the_fix(postgres) -> None:
    results = await run_probe(
        PG,
        postgres.port,
        user=postgres.user,
        database=postgres.database,
        password="not-" + postgres.password,
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    hint = results["db-auth"].hint or ""
    assert "the database rejected user app: check the password" in hint
    assert "tunnel-tui edit mydb --db-password-stdin" in hint


async def test_unknown_database(postgres) -> None:
    results = await run_probe(
        PG, postgres.port, user=postgres.user, database="nosuchdb", password=postgres.password
    )
    assert results["db-auth"].status.value == "fail"
    assert "nosuchdb" in results["db-auth"].detail
    assert "does not exist" in (results["db-auth"].hint or "")


async def test_tls_required_but_server_has_none(postgres) -> None:
    results = await run_probe(
        PG,
        postgres.port,
        user=postgres.user,
        database=postgres.database,
        password=postgres.password,
        options={"sslmode": "require"},
    )
    assert statuses(results) == {"db-tls": "fail"}
    assert "does not offer TLS" in results["db-tls"].detail


async def test_verify_full_with_the_ca_reports_what_was_negotiated(postgres_factory) -> None:
    server = postgres_factory(tls=True)
    common = dict(user=server.user, database=server.database, password=server.password)
    results = await run_probe(
        PG,
        server.port,
        options={"sslmode": "verify-full", "sslrootcert": str(server.ca_cert_path)},
        **common,
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "ok", "query": "ok"}
    tls = results["db-tls"].detail
    assert "TLSv1." in tls and "verified against" in tls and "for 127.0.0.1" in tls
    assert "over TLS" in results["db-auth"].detail

    # The name checked is the database's as the bastion sees it, not 127.0.0.1.
    wrong_name = await run_probe(
        PG,
        server.port,
        db_host="db.internal",
        options={"sslmode": "verify-full", "sslrootcert": str(server.ca_cert_path)},
        **common,
    )
    assert statuses(wrong_name) == {"db-tls": "fail"}
    assert "not valid for db.internal" in wrong_name["db-tls"].detail

    # verify-ca ignores the name; require encrypts without verifying.
    verify_ca = await run_probe(
        PG,
        server.port,
        db_host="db.internal",
        options={"sslmode": "verify-ca", "sslrootcert": str(server.ca_cert_path)},
        **common,
    )
    assert statuses(verify_ca)["query"] == "ok"
    require = await run_probe(PG, server.port, options={"sslmode": "require"}, **common)
    assert statuses(require)["query"] == "ok"
    assert "not verified" in require["db-tls"].detail


async def test_verify_ca_with_another_ca_fails(postgres_factory, tmp_path: Path) -> None:
    server = postgres_factory(tls=True)
    other = make_server_cert(tmp_path)
    results = await run_probe(
        PG,
        server.port,
        user=server.user,
        database=server.database,
        password=server.password,
        options={"sslmode": "verify-ca", "sslrootcert": str(other.ca_cert)},
    )
    assert statuses(results) == {"db-tls": "fail"}
    assert "not accepted" in results["db-tls"].detail
    assert "sslrootcert" in (results["db-tls"].hint or "")


async def test_verify_ca_without_a_ca_file_says_what_to_add(postgres) -> None:
    results = await run_probe(
        PG,
        postgres.port,
        user=postgres.user,
        password=postgres.password,
        options={"sslmode": "verify-ca"},
    )
    assert statuses(results) == {"db-tls": "fail"}
    assert "sslrootcert=" in (results["db-tls"].hint or "")


async def test_no_pg_hba_entry(postgres_factory) -> None:
    server = postgres_factory()
    hba = server.data / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all app 127.0.0.1/32 scram-sha-256\n")
    server.restart()
    results = await run_probe(
        PG, server.port, user="reporting", database=server.database, password="whatever"
    )
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    assert "pg_hba.conf" in results["db-auth"].detail
    assert "pg_hba.conf has no line" in (results["db-auth"].hint or "")


async def test_no_password_stored(postgres) -> None:
    results = await run_probe(PG, postgres.port, user=postgres.user, database=postgres.database)
    assert statuses(results) == {"db-tls": "ok", "db-auth": "fail"}
    assert "no password is stored for this connection: set one with tunnel-tui edit mydb" in (
        results["db-auth"].hint or ""
    )


async def test_sslmode_allow_and_prefer_against_a_tls_server(postgres_factory) -> None:
    server = postgres_factory(tls=True)
    common = dict(user=server.user, database=server.database, password=server.password)
    allow = await run_probe(PG, server.port, options={"sslmode": "allow"}, **common)
    assert statuses(allow)["query"] == "ok"
    assert "plain first" in allow["db-tls"].detail
    prefer = await run_probe(PG, server.port, **common)
    assert statuses(prefer)["query"] == "ok"
    assert "TLSv1." in prefer["db-tls"].detail and "over TLS" in prefer["db-auth"].detail
