"""Secret canary (issue 10 item 14): every CLI flow, successful and failing, run with
`--debug`, a canary database password, a canary private key (imported, encrypted with
a canary passphrase) and canary wrong secrets; then no trace of any of them in the
home directory, logs, captured output and error text, any process's command line, or
the environment of our processes (the agent included, while it runs)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import pytest

from tests.fixtures.canary import (
    Canaries,
    assert_no_hits,
    make_canaries,
    our_pids,
    scan_processes,
    scan_text,
    scan_tree,
)
from tests.reliability.helpers import REPO

pytestmark = pytest.mark.slow


def _keygen(path: Path, passphrase: str = "") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "",
                    "-f", str(path)], check=True, capture_output=True, timeout=30)
    return path.read_text()


class Cli:
    """`python -m tunnel_tui --debug ...` as a user runs it; keeps every output."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.outputs: list[tuple[str, str]] = []

    def __call__(self, *args: str, stdin: str = "", expect: int | None = 0,
                 timeout: float = 90) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "tunnel_tui", "--debug", *args],
                              input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=REPO)
        label = " ".join(args)
        self.outputs += [(f"stdout of `{label}`", proc.stdout),
                         (f"stderr of `{label}`", proc.stderr)]
        if expect is not None and proc.returncode != expect:
            pytest.fail(f"`{label}` exited {proc.returncode}, expected {expect}\n"
                        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
        return proc

    def scan(self, canaries: Canaries) -> list[str]:
        return [hit for label, text in self.outputs for hit in scan_text(label, text, canaries)]


async def _set_pg_password(pg, new: str) -> None:
    conn = await asyncpg.connect(host=pg.host, port=pg.port, user=pg.user,
                                 password=pg.password, database=pg.database, timeout=10)
    try:
        await conn.execute(f"ALTER ROLE CURRENT_USER PASSWORD '{new}'")
    finally:
        await conn.close()


async def _query(port: int, pg, password: str) -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user=pg.user,
                                 password=password, database=pg.database, timeout=10)
    try:
        return await conn.fetchval("select current_user")
    finally:
        await conn.close()


def test_no_secret_leaks_anywhere_across_every_cli_flow(
    isolated_env, secret_service, sshd_factory, postgres_factory, agent_reaper
):
    tag = secrets.token_hex(6)
    db_password = f"dbpw-canary-{tag}"
    passphrase = f"pass-canary-{tag}"
    wrong_passphrase = f"wrongpass-canary-{tag}"
    wrong_db_password = f"wrongdb-canary-{tag}"
    url_password = f"urlpw-canary-{tag}"

    pg = postgres_factory()
    asyncio.run(_set_pg_password(pg, db_password))
    server = sshd_factory()

    # The canary key: its unencrypted body is the secret; the user's file is encrypted.
    with tempfile.TemporaryDirectory() as scratch:
        plain_pem = _keygen(Path(scratch) / "k")
        common_pem = _keygen(Path(scratch) / "other")
    key_file = isolated_env.root / "id_canary"
    key_file.write_text(plain_pem)
    os.chmod(key_file, 0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", passphrase, "-f", str(key_file)],
                   check=True, capture_output=True, timeout=30)
    public = subprocess.run(["ssh-keygen", "-y", "-P", passphrase, "-f", str(key_file)],
                            check=True, capture_output=True, text=True).stdout.strip()
    server.authorize(public)

    canaries = make_canaries(
        passwords=[("db password", db_password), ("key passphrase", passphrase),
                   ("wrong passphrase", wrong_passphrase),
                   ("wrong db password", wrong_db_password),
                   ("password in a URL", url_password)],
        private_pems=[("imported private key", plain_pem)],
        common_pem=common_pem,
    )
    env = dict(secret_service.env)
    env["TUNNEL_TUI_HOME"] = str(isolated_env.home)
    cli = Cli(env)
    db_url = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.database}"
    ssh_url = f"ssh://{server.user}@{server.host}:{server.port}"

    # -- successful flows --------------------------------------------------------------
    cli("add", "pg", "--db", db_url, "--ssh", ssh_url, "--identity", str(key_file),
        "--passphrase-stdin", "--db-password-stdin", stdin=f"{passphrase}\n{db_password}\n")
    cli("key", "show", "pg")
    cli("key", "list", "--json")
    cli("list", "--json")
    cli("show", "pg", "--json")
    cli("validate", "pg", "--accept-new-host-key", "--json")
    cli("validate", "pg")
    up = cli("up", "pg", "--json")
    port = json.loads(up.stdout)["local_port"]
    assert asyncio.run(_query(port, pg, db_password)) == pg.user
    cli("status", "--json")
    cli("status", "pg")
    assert our_pids(isolated_env.home), "the agent should be running now"
    live_process_hits = scan_processes(canaries, isolated_env.home)

    # -- failing flows -------------------------------------------------------------------
    cli("add", "pg2", "--db", db_url, "--ssh", ssh_url, "--identity", str(key_file),
        "--passphrase-stdin", stdin=f"{wrong_passphrase}\n", expect=2)
    bad_url = f"postgresql://{pg.user}:{url_password}@{pg.host}:{pg.port}/{pg.database}"
    cli("add", "pg3", "--db", bad_url, "--ssh", ssh_url, expect=2)
    cli("validate", "nope", expect=2)
    cli("edit", "pg", "--db-password-stdin", stdin=f"{wrong_db_password}\n")
    failed = cli("validate", "pg", "--json", expect=1)
    assert '"db-auth"' in failed.stdout
    cli("edit", "pg", "--db-password-stdin", stdin=f"{db_password}\n")
    cli("validate", "pg")

    # -- rotation: the new private key is a secret too -----------------------------------
    cli("rotate-key", "pg", "--json", timeout=120)
    from tunnel_tui.core.catalog import Catalog

    catalog = Catalog(isolated_env.home)
    new_pem = catalog.private_key(catalog.get("pg").key_id).reveal()
    canaries.needles.update(make_canaries(private_pems=[("rotated private key", new_pem)],
                                          common_pem=common_pem).needles)
    cli("validate", "pg")
    server.deauthorize(catalog.key(catalog.get("pg").key_id).public_key)
    cli("validate", "pg", "--json", expect=1)  # ssh-auth fails
    cli("down", "pg")
    cli("remove", "pg", "--yes")
    cli("status", "--json")

    hits = live_process_hits
    hits += cli.scan(canaries)
    hits += scan_tree(isolated_env.root, canaries)
    hits += scan_tree(REPO / "screenshots", canaries)
    hits += scan_processes(canaries, isolated_env.home)
    assert_no_hits(hits)
    # The scan is not vacuous: the needles do match where the secrets legitimately are.
    assert scan_text("self-check", plain_pem, canaries)
    assert scan_text("self-check", db_password, canaries)
