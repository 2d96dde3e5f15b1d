"""validate.run against real sshd + PostgreSQL: every step ok, and each failure mode
fails the right step with an actionable hint, the rest skipped."""

from __future__ import annotations

import asyncssh
import pytest

from tests.fixtures.engine import FAST, make_conn, trust
from tunnel_tui.core.model import DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import VALIDATION_STEPS, StepStatus
from tunnel_tui.validate import run


class Secrets:
    """The two Catalog methods validation uses."""

    def __init__(self, keys: dict[str, str], db_password: str | None = None) -> None:
        self._keys = keys
        self._password = db_password

    def private_key(self, key_id: str) -> Secret:
        return Secret(self._keys[key_id])

    def db_password(self, name: str) -> Secret | None:
        return Secret(self._password) if self._password is not None else None


async def collect(conn, catalog, kh, **kw):
    return [r async for r in run(conn, catalog, known_hosts=kh, settings=FAST, **kw)]


def by_step(results):
    final = [r for r in results if r.status is not StepStatus.RUNNING]
    return {r.step: r for r in final}, final


def assert_failed_at(results, step):
    steps, final = by_step(results)
    statuses = [r.status for r in final]
    assert statuses.count(StepStatus.FAIL) == 1, [(r.step, r.status) for r in final]
    failed = next(r for r in final if r.status is StepStatus.FAIL)
    assert failed.step == step, [(r.step, r.status, r.detail) for r in final]
    i = final.index(failed)
    assert all(r.status is StepStatus.OK for r in final[:i])
    assert all(r.status is StepStatus.SKIP for r in final[i + 1 :])
    # Every step id appears, in the contract's order.
    order = [r.step for r in final]
    assert [s for s in VALIDATION_STEPS if s in order] == sorted(
        set(order), key=VALIDATION_STEPS.index
    )
    assert set(order) == set(VALIDATION_STEPS)
    assert failed.hint
    return failed


def pg_conn(server, pg, **kw):
    return make_conn("pgconn", [(server.host, server.port, server.user)], (pg.host, pg.port),
                     database=pg.database, db_user=pg.user, **kw)


@pytest.fixture
def ready(sshd, client_keypair, engine_known_hosts):
    sshd.authorize(client_keypair.public_line)
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    return sshd


async def test_postgres_validates_ok_with_version(ready, client_keypair, engine_known_hosts,
                                                  postgres):
    results = await collect(pg_conn(ready, postgres),
                            Secrets({"k-test": client_keypair.private_pem}, postgres.password),
                            engine_known_hosts)
    steps, final = by_step(results)
    assert [r.step for r in final] == list(VALIDATION_STEPS)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail, r.hint) for r in final]
    assert "PostgreSQL" in steps["query"].detail or "15" in steps["query"].detail
    assert "trusted" in steps["host-key"].detail
    assert ready.host_fingerprint in steps["host-key"].detail
    assert "ed25519" in steps["keyring"].detail


async def test_wrong_db_password_fails_db_auth(ready, client_keypair, engine_known_hosts,
                                               postgres):
    results = await collect(pg_conn(ready, postgres),
                            Secrets({"k-test": client_keypair.private_pem}, "wrong-password"),
                            engine_known_hosts)
    failed = assert_failed_at(results, "db-auth")
    assert "app" in failed.hint and "password" in failed.hint
    assert "wrong-password" not in (failed.detail + failed.hint)


async def test_db_port_closed_fails_channel(ready, client_keypair, engine_known_hosts,
                                            free_tcp_port):
    conn = make_conn("c", [(ready.host, ready.port, ready.user)], ("127.0.0.1", free_tcp_port))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts)
    failed = assert_failed_at(results, "channel")
    assert f"could not reach 127.0.0.1:{free_tcp_port}: connection refused" in failed.detail


async def test_dns_failure_on_bastion_fails_channel(ready, client_keypair, engine_known_hosts):
    conn = make_conn("c", [(ready.host, ready.port, ready.user)], ("nonexistent.invalid", 5432))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts)
    failed = assert_failed_at(results, "channel")
    assert "nonexistent.invalid:5432" in failed.detail
    assert "resolve" in failed.hint


@pytest.mark.parametrize("options", [{"PermitOpen": "127.0.0.1:1"},
                                     {"AllowTcpForwarding": "no"}],
                         ids=["permitopen", "allowtcpforwarding-no"])
async def test_forwarding_policy_fails_channel(sshd_factory, client_keypair, engine_known_hosts,
                                               postgres, options):
    server = sshd_factory(options)
    server.authorize(client_keypair.public_line)
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    results = await collect(pg_conn(server, postgres),
                            Secrets({"k-test": client_keypair.private_pem}, postgres.password),
                            engine_known_hosts)
    failed = assert_failed_at(results, "channel")
    assert "refused to forward" in failed.detail
    for word in ("AllowTcpForwarding", "PermitOpen", "restrict"):
        assert word in failed.hint


async def test_unknown_host_key_fails_then_accepted(sshd, client_keypair, engine_known_hosts,
                                                    postgres):
    sshd.authorize(client_keypair.public_line)
    catalog = Secrets({"k-test": client_keypair.private_pem}, postgres.password)
    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts)
    failed = assert_failed_at(results, "host-key")
    assert sshd.host_fingerprint in failed.detail
    assert f"--accept-host-key {sshd.host_fingerprint}" in failed.hint
    assert engine_known_hosts.trusted_keys(sshd.host, sshd.port) == []

    results = await collect(pg_conn(sshd, postgres), catalog, engine_known_hosts,
                            accept_new_host_key=True)
    steps, final = by_step(results)
    assert all(r.ok for r in final), [(r.step, r.detail) for r in final]
    assert "accepted" in steps["host-key"].detail
    assert engine_known_hosts.trusted_keys(sshd.host, sshd.port)


async def test_unknown_host_key_prompt_callback(sshd, client_keypair, engine_known_hosts,
                                                postgres):
    sshd.authorize(client_keypair.public_line)
    asked = []

    def prompt(hop, fingerprint):
        asked.append(fingerprint)
        return True

    results = await collect(
        pg_conn(sshd, postgres), Secrets({"k-test": client_keypair.private_pem},
                                         postgres.password),
        engine_known_hosts, on_host_key=prompt,
    )
    assert asked == [sshd.host_fingerprint]
    steps, final = by_step(results)
    assert [r.step for r in final] == list(VALIDATION_STEPS)
    assert all(r.ok for r in final)
    assert "accepted" in steps["host-key"].detail


async def test_changed_host_key_is_a_hard_failure(sshd_factory, client_keypair,
                                                  engine_known_hosts):
    server = sshd_factory()
    server.authorize(client_keypair.public_line)
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    before = engine_known_hosts.trusted_keys(server.host, server.port)
    server.restart(new_host_key=True)
    conn = make_conn("c", [(server.host, server.port, server.user)], ("127.0.0.1", 5432))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts, accept_new_host_key=True)
    failed = assert_failed_at(results, "host-key")
    assert "man-in-the-middle" in failed.detail and server.host_fingerprint in failed.detail
    assert engine_known_hosts.trusted_keys(server.host, server.port) == before


async def test_key_not_authorized_fails_ssh_auth_with_key_line(
    sshd, client_keypair, engine_known_hosts
):
    trust(engine_known_hosts, sshd.host, sshd.port, sshd.host_public_key)
    other = asyncssh.generate_private_key("ssh-ed25519")
    pem = other.export_private_key().decode()
    conn = make_conn("c", [(sshd.host, sshd.port, sshd.user)], ("127.0.0.1", 5432))
    results = await collect(conn, Secrets({"k-test": pem}), engine_known_hosts)
    failed = assert_failed_at(results, "ssh-auth")
    public_b64 = other.export_public_key().decode().split()[1]
    steps, _ = by_step(results)
    assert sshd.host_fingerprint in steps["host-key"].detail  # which key was checked
    assert failed.elapsed_ms > 0
    assert f"add this public key to ~{sshd.user}/.ssh/authorized_keys on {sshd.host}" in failed.hint
    assert public_b64 in failed.hint


async def test_bastion_down_fails_tcp(sshd_factory, client_keypair, engine_known_hosts):
    server = sshd_factory()
    server.stop()
    conn = make_conn("c", [(server.host, server.port, server.user)], ("127.0.0.1", 5432))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts)
    failed = assert_failed_at(results, "tcp")
    assert "connection refused" in failed.detail


async def test_unresolvable_bastion_fails_resolve(client_keypair, engine_known_hosts):
    conn = make_conn("c", [("bastion.nonexistent.invalid", 22, "u")], ("127.0.0.1", 5432))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts)
    failed = assert_failed_at(results, "resolve")
    assert "bastion.nonexistent.invalid" in failed.hint


async def test_missing_key_fails_keyring(engine_known_hosts):
    class Locked:
        def private_key(self, key_id):
            from tunnel_tui.core.errors import SecretStoreError

            raise SecretStoreError("the keyring is locked", hint="unlock it and retry")

        def db_password(self, name):
            return None

    conn = make_conn("c", [("127.0.0.1", 22, "u")], ("127.0.0.1", 5432))
    results = await collect(conn, Locked(), engine_known_hosts)
    failed = assert_failed_at(results, "keyring")
    assert failed.hint == "unlock it and retry"


async def test_wait_for_key_retries_until_installed(sshd_factory, client_keypair,
                                                    engine_known_hosts, postgres):
    server = sshd_factory()
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    running = []
    final = []
    async for result in run(
        pg_conn(server, postgres), Secrets({"k-test": client_keypair.private_pem},
                                           postgres.password),
        known_hosts=engine_known_hosts, settings=FAST, wait_for_key_seconds=20,
    ):
        if result.status is StepStatus.RUNNING:
            running.append(result)
            assert result.step == "ssh-auth" and "retrying for" in result.detail
            if len(running) == 2:
                server.authorize(client_keypair.public_line)  # the user installs the key
        else:
            final.append(result)
    assert len(running) >= 2
    assert all(r.ok for r in final), [(r.step, r.detail) for r in final]


async def test_jump_hosts_repeat_hop_steps(sshd_factory, client_keypair, engine_known_hosts,
                                           postgres):
    jump = sshd_factory()
    bastion = sshd_factory()
    for s in (jump, bastion):
        s.authorize(client_keypair.public_line)
        trust(engine_known_hosts, s.host, s.port, s.host_public_key)
    conn = make_conn("pj", [(jump.host, jump.port, jump.user),
                            (bastion.host, bastion.port, bastion.user)],
                     (postgres.host, postgres.port), database=postgres.database,
                     db_user=postgres.user)
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem},
                                          postgres.password), engine_known_hosts)
    final = [r for r in results if r.status is not StepStatus.RUNNING]
    assert all(r.ok for r in final), [(r.step, r.detail) for r in final]
    hop_rows = [(r.step, r.detail) for r in final if r.step in ("tcp", "host-key", "ssh-auth")]
    assert len(hop_rows) == 6
    assert jump.user in hop_rows[0][1] and "jump host 1" in hop_rows[0][1]
    assert bastion.user in hop_rows[3][1] and "bastion" in hop_rows[3][1]


async def test_second_hop_unknown_key_names_the_hop(sshd_factory, client_keypair,
                                                    engine_known_hosts):
    jump = sshd_factory()
    bastion = sshd_factory()
    for s in (jump, bastion):
        s.authorize(client_keypair.public_line)
    trust(engine_known_hosts, jump.host, jump.port, jump.host_public_key)
    conn = make_conn("pj", [(jump.host, jump.port, jump.user),
                            (bastion.host, bastion.port, bastion.user)], ("127.0.0.1", 5432))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts)
    failed = assert_failed_at(results, "host-key")
    assert f"bastion {bastion.user}@" in failed.detail
    _, final = by_step(results)
    assert [r.step for r in final].count("tcp") == 2


async def test_mysql_kind_uses_its_probe(ready, client_keypair, engine_known_hosts,
                                         postgres):
    # A MySQL probe against a PostgreSQL port: the tunnel steps pass, the DB steps fail
    # cleanly (no hang, a hint) — the probe is chosen by kind.
    conn = make_conn("m", [(ready.host, ready.port, ready.user)], (postgres.host, postgres.port),
                     kind=DbKind.MYSQL, db_user="app", database="appdb")
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}, "x"),
                            engine_known_hosts, db_timeout=3)
    steps, final = by_step(results)
    assert steps["channel"].ok
    assert any(r.status is StepStatus.FAIL for r in final if r.step in ("db-tls", "db-auth",
                                                                         "query"))


async def test_mariadb_validates_ok_and_query_runs_through_tunnel(
    ready, client_keypair, engine_known_hosts, mariadb
):
    conn = make_conn("maria", [(ready.host, ready.port, ready.user)],
                     (mariadb.host, mariadb.port), kind=DbKind.MYSQL,
                     database=mariadb.database, db_user=mariadb.user)
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem},
                                          mariadb.password), engine_known_hosts)
    steps, final = by_step(results)
    assert [r.step for r in final] == list(VALIDATION_STEPS)
    assert all(r.status is not StepStatus.FAIL for r in final), [
        (r.step, r.status, r.detail, r.hint) for r in final
    ]
    assert steps["query"].ok and "MariaDB" in steps["query"].detail

    # And a real query through an engine tunnel.
    import aiomysql

    from tunnel_tui.engine import Tunnel

    async with Tunnel(conn, {"k-test": Secret(client_keypair.private_pem)},
                      engine_known_hosts, settings=FAST) as t:
        db = await aiomysql.connect(host="127.0.0.1", port=t.local_port, user=mariadb.user,
                                    password=mariadb.password, db=mariadb.database)
        try:
            async with db.cursor() as cur:
                await cur.execute("SELECT 6 * 7")
                assert (await cur.fetchone())[0] == 42
        finally:
            db.close()


async def test_mariadb_wrong_password_fails_db_auth(ready, client_keypair, engine_known_hosts,
                                                    mariadb):
    conn = make_conn("maria", [(ready.host, ready.port, ready.user)],
                     (mariadb.host, mariadb.port), kind=DbKind.MYSQL,
                     database=mariadb.database, db_user=mariadb.user)
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}, "nope"),
                            engine_known_hosts)
    failed = assert_failed_at(results, "db-auth")
    assert "password" in failed.hint


async def test_db_tls_applies_inside_the_tunnel(ready, client_keypair, engine_known_hosts,
                                                postgres_factory):
    import dataclasses

    pg = postgres_factory(tls=True)
    conn = pg_conn(ready, pg)
    db = dataclasses.replace(conn.database, options=(
        ("sslmode", "verify-full"), ("sslrootcert", str(pg.ca_cert_path)),
    ))
    conn = dataclasses.replace(conn, database=db)
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}, pg.password),
                            engine_known_hosts)
    steps, final = by_step(results)
    assert all(r.ok for r in final), [(r.step, r.status, r.detail, r.hint) for r in final]
    assert "TLS" in steps["db-tls"].detail or "tls" in steps["db-tls"].detail.lower()


async def test_jump_host_without_forwarding_fails_second_hop_tcp(
    sshd_factory, client_keypair, engine_known_hosts
):
    jump = sshd_factory({"AllowTcpForwarding": "no"})
    bastion = sshd_factory()
    for s in (jump, bastion):
        s.authorize(client_keypair.public_line)
        trust(engine_known_hosts, s.host, s.port, s.host_public_key)
    conn = make_conn("pj", [(jump.host, jump.port, jump.user),
                            (bastion.host, bastion.port, bastion.user)], ("127.0.0.1", 5432))
    results = await collect(conn, Secrets({"k-test": client_keypair.private_pem}),
                            engine_known_hosts)
    failed = assert_failed_at(results, "tcp")
    assert "refused to forward" in failed.detail and f"bastion {bastion.user}@" in failed.detail
    assert "AllowTcpForwarding" in failed.hint
    _, final = by_step(results)
    assert [r.status for r in final if r.step == "ssh-auth"][0] is StepStatus.OK  # hop 1 ok
