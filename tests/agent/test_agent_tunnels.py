"""Tunnels held by the agent, driven through the real CLI in separate processes,
against a real OpenSSH sshd bastion and real PostgreSQL / MariaDB behind it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.agent import AgentProcess, pid_alive
from tests.fixtures.waiting import wait_until
from tunnel_tui.agent.address import resolve
from tunnel_tui.agent.client import AgentClient, AgentVaultStore
from tunnel_tui.core import paths
from tunnel_tui.core.atomic import write_private_file
from tunnel_tui.core.catalog import AgentKeyChoice, Catalog, ImportKey
from tunnel_tui.core.errors import SecretStoreError, UsageError
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelState

UP_LINE = re.compile(r"^(?P<name>\S+) up on 127\.0\.0\.1:(?P<port>\d+)$")


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=stdin,
    )


def no_keyring_env() -> dict[str, str]:
    """A plain SSH login: no D-Bus session, no keyring backend at all."""
    env = dict(os.environ)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


def status_json(name: str | None = None) -> list[dict[str, Any]]:
    result = cli("status", *([name] if name else []), "--json", env=no_keyring_env())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def status_of(name: str = "pg") -> dict[str, Any]:
    """`status NAME --json`'s one row."""
    (status,) = status_json(name)
    return status


def wait_for_state(
    state: str, timeout: float = 20, name: str = "pg",
    also: Callable[[dict[str, Any]], object] = bool,
) -> dict[str, Any]:
    """`name`'s status once it is in `state` (and `also(status)` holds), polled for at
    most `timeout` seconds."""
    return wait_until(
        lambda: (s := status_of(name))["state"] == state and also(s) and s, timeout,
        lambda: f"{name} {state} (is {status_of(name)})",
    )


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def trust_host(sshd: Any) -> None:
    """The bastion's host key, as `validate --accept-new-host-key` would have recorded it."""
    path = paths.known_hosts_path()
    existing = path.read_bytes() if path.exists() else b""
    write_private_file(path, existing + sshd.known_hosts_line().encode() + b"\n")


@dataclass
class Setup:
    name: str
    sshd: Any
    db: Any


def add_connection(
    name: str, scheme: str, db: Any, sshd: Any, keypair: Any, *, autostart: bool = False
) -> Setup:
    Catalog().add(
        name,
        f"{scheme}://{db.user}@{db.host}:{db.port}/{db.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(keypair.private_pem.encode()),
        db_password=Secret(db.password),
        autostart=autostart,
    )
    return Setup(name, sshd, db)


def add_ready_connection(
    name: str, scheme: str, db: Any, sshd: Any, keypair: Any, *, autostart: bool = False
) -> Setup:
    """`add_connection` with the key in `sshd`'s authorized_keys and its host key
    trusted: ready to come up."""
    sshd.authorize(keypair.public_line)
    trust_host(sshd)
    return add_connection(name, scheme, db, sshd, keypair, autostart=autostart)


def add_agent_key_connection(
    name: str, db: Any, sshd: Any, public: str, **options: Any
) -> None:
    """`name` to PostgreSQL `db` through `sshd` with a key that lives in an ssh-agent
    (public data only: the catalog has no keyring at all)."""
    from tests.core.test_ssh_agent_catalog import NoKeyring

    Catalog(secrets=NoKeyring()).add(
        name,
        f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=AgentKeyChoice(public),
        **options,
    )


@pytest.fixture
def pg_setup(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> Setup:
    return add_ready_connection("pg", "postgresql", postgres, sshd, client_keypair)


async def pg_query(port: int, db: Any, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=db.user, password=db.password, database=db.database
    )
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def up(name: str, *extra: str) -> int:
    return up_in(name, None, *extra)


def up_in(name: str, env: dict[str, str] | None, *extra: str) -> int:
    result = cli("up", name, *extra, env=env)
    assert result.returncode == 0, result.stderr
    match = UP_LINE.match(result.stdout.strip())
    assert match and match["name"] == name, result.stdout
    return int(match["port"])


def test_up_query_status_from_ssh_login_then_down(pg_setup: Setup) -> None:
    port = up("pg")
    # The `up` process has exited: the tunnel lives on in the agent.
    assert asyncio.run(pg_query(port, pg_setup.db, "SELECT 1")) == 1
    (before,) = status_json("pg")
    assert before["state"] == "up" and before["local_port"] == port
    assert before["bastion"] == f"{pg_setup.sshd.user}@127.0.0.1:{pg_setup.sshd.port}"
    assert before["target"] == f"127.0.0.1:{pg_setup.db.port}"
    assert before["last_error"] is None and before["since"].endswith("Z")
    assert set(before) >= {
        "name",
        "state",
        "local_host",
        "local_port",
        "bastion",
        "target",
        "since",
        "bytes_in",
        "bytes_out",
        "channels",
        "reconnects",
        "last_error",
    }

    asyncio.run(pg_query(port, pg_setup.db, "SELECT repeat('x', 200000)"))
    grown = wait_until(
        lambda: [s for s in status_json() if s["bytes_in"] > before["bytes_in"] + 200000],
        what="bytes_in to grow",
    )
    assert grown[0]["name"] == "pg" and grown[0]["bytes_out"] > before["bytes_out"]

    # The picked port is saved, and `up` again is a no-op printing the same line.
    assert Catalog().get("pg").local_port == port
    assert up("pg") == port
    as_json = json.loads(cli("up", "pg", "--json").stdout)
    assert as_json["state"] == "up" and as_json["local_port"] == port
    table = cli("status", env=no_keyring_env())
    assert table.returncode == 0
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    assert re.search(rf"^pg\s+up\s+127\.0\.0\.1:{port}\s", table.stdout, re.M)

    result = cli("down", "pg")
    assert result.returncode == 0, result.stderr
    assert refused(port)
    assert status_json("pg")[0]["state"] == "down"


def test_sigkill_agent_then_up_again_on_the_same_port(pg_setup: Setup) -> None:
    port = up("pg")
    pid = AgentClient().ping()["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), what="agent death")
    assert resolve().socket.exists()
    assert up("pg") == port
    assert AgentClient().ping()["pid"] != pid
    assert asyncio.run(pg_query(port, pg_setup.db, "SELECT 2")) == 2


def test_sigterm_closes_tunnels_and_sessions(
    sshd: Any,
    postgres: Any,
    client_keypair: Any,
    secret_service: Any,
    agent_process: AgentProcess,
) -> None:
    setup = add_ready_connection("pg", "postgresql", postgres, sshd, client_keypair)
    status = agent_process.client().up("pg", timeout=20)
    assert status.state is TunnelState.UP and status.local_port
    assert asyncio.run(pg_query(status.local_port, setup.db, "SELECT 3")) == 3
    assert agent_process.stop(signal.SIGTERM) == 0
    assert refused(status.local_port)
    assert not agent_process.socket.exists()
    wait_until(lambda: not sshd.session_pids(), what="sshd sessions to end")


def test_failures_exit_1_with_reason_and_hint(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    sshd.authorize(client_keypair.public_line)
    add_connection("pg", "postgresql", postgres, sshd, client_keypair)

    # Host key never trusted: refused with the way forward.
    result = cli("up", "pg")
    assert result.returncode == 1
    assert "hint:" in result.stderr and "--accept-host-key SHA256:" in result.stderr
    (failed,) = status_json("pg")
    assert failed["state"] == "failed" and failed["last_error"]
    table = cli("status", env=no_keyring_env()).stdout
    assert "pg: " in table and "hint: " in table

    # Trusted host, but the key is not in authorized_keys.
    trust_host(sshd)
    sshd.deauthorize(client_keypair.public_line)
    result = cli("up", "pg")
    assert result.returncode == 1 and "hint:" in result.stderr, result.stderr
    # The line to add ends with the key's comment, as validation and the key wait print it.
    key_name = Catalog().key(Catalog().get("pg").key_id).name
    line = f"{client_keypair.public_line} tunnel-tui:{key_name}"
    assert line in " ".join(result.stderr.split()), result.stderr
    assert line in status_of("pg")["hint"]

    # Nothing listens where the bastion should be.
    Catalog().edit("pg", ssh_url=f"ssh://{sshd.user}@127.0.0.1:{_closed_port()}")
    result = cli("up", "pg", "--timeout", "10")
    assert result.returncode == 1 and "hint:" in result.stderr, result.stderr

    assert cli("up", "nope").returncode == 2
    assert cli("down", "nope").returncode == 2
    assert cli("status", "nope").returncode == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_without_agent_lists_configured_connections_down(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any
) -> None:
    add_connection("pg", "postgresql", postgres, sshd, client_keypair)
    (row,) = status_json()
    assert row["name"] == "pg" and row["state"] == "down" and row["since"] is None
    result = cli("status", env=no_keyring_env())
    assert "no tunnels are up" in result.stdout
    assert not resolve().socket.exists()  # status never starts an agent


def test_mariadb_through_the_agent(
    sshd: Any, mariadb: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    import aiomysql

    add_ready_connection("my", "mysql", mariadb, sshd, client_keypair)
    port = up("my")

    async def query() -> Any:
        conn = await aiomysql.connect(
            host="127.0.0.1",
            port=port,
            user=mariadb.user,
            password=mariadb.password,
            db=mariadb.database,
        )
        try:
            async with conn.cursor() as cur:
                await cur.execute("SELECT 40 + 2")
                return (await cur.fetchone())[0]
        finally:
            conn.close()

    assert asyncio.run(query()) == 42
    assert status_json("my")[0]["bytes_in"] > 0


async def test_async_client_sees_up_events_for_the_tui(pg_setup: Setup) -> None:
    from tunnel_tui.agent.client import AsyncAgentClient, ensure_agent

    await asyncio.to_thread(ensure_agent)
    client = AsyncAgentClient()
    seen: list[TunnelState] = []

    async def watch() -> None:
        async for status in client.events(interval=0.1):
            seen.append(status.state)
            if status.state is TunnelState.UP:
                return

    watcher = asyncio.create_task(watch())
    status = await client.up("pg", timeout=20)
    await asyncio.wait_for(watcher, 10)
    assert seen[0] is TunnelState.DOWN and seen[-1] is TunnelState.UP
    assert [s.state for s in await client.status()] == [TunnelState.UP]
    assert (await client.down("pg")).state is TunnelState.DOWN
    assert refused(status.local_port or 0)


def test_vault_unlock_lets_the_agent_bring_tunnels_up(
    sshd: Any,
    postgres: Any,
    client_keypair: Any,
    agent_reaper: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An SSH login with no keyring: secrets live in the vault the agent unlocks.
    monkeypatch.setenv("TUNNEL_TUI_SECRETS", "vault")
    assert "no vault" in cli("vault", "status").stdout
    result = cli("vault", "unlock", "--passphrase-stdin", stdin="correct horse\n")
    assert result.returncode == 0, result.stderr
    assert "created and unlocked" in result.stdout
    sshd.authorize(client_keypair.public_line)
    trust_host(sshd)
    Catalog(vault_passphrase=Secret("correct horse")).add(
        "pg",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode()),
    )
    port = up("pg")
    assert asyncio.run(pg_query(port, postgres, "SELECT 4")) == 4
    assert cli("down", "pg").returncode == 0

    assert cli("vault", "lock").returncode == 0
    assert "vault locked" in cli("vault", "status").stdout
    result = cli("up", "pg")
    assert result.returncode == 1 and "vault unlock" in result.stderr

    wrong = cli("vault", "unlock", "--passphrase-stdin", stdin="wrong\n")
    assert wrong.returncode == 1 and "passphrase" in wrong.stderr
    assert cli("vault", "unlock", "--passphrase-stdin", stdin="correct horse\n").returncode == 0
    assert up("pg") == port
    log = (paths.log_dir() / "agent.log").read_text()
    assert "correct horse" not in log and "PRIVATE KEY" not in log


def test_switch_key_moves_the_live_tunnel_to_the_new_key(pg_setup: Setup) -> None:
    port = up("pg")
    catalog = Catalog()
    old = catalog.key(catalog.get("pg").key_id)
    new = catalog.generate_key("pg-next")
    pg_setup.sshd.authorize(new.public_key)
    assert AgentClient().switch_key(old.id, new.id) == ["pg"]
    pg_setup.sshd.deauthorize(old.public_key)
    assert asyncio.run(pg_query(port, pg_setup.db, "SELECT 5")) == 5
    assert new.fingerprint in pg_setup.sshd.log_text()  # sshd logs the key it accepted
    (row,) = status_json("pg")
    assert row["state"] == "up" and row["local_port"] == port


def test_unwatched_failure_is_logged_and_notified(
    sshd_factory: Any,
    postgres: Any,
    client_keypair: Any,
    secret_service: Any,
    agent_reaper: None,
    isolated_env: Any,
) -> None:
    # A stand-in notify-send records what a desktop would have shown.
    bin_dir = isolated_env.root / "bin"
    bin_dir.mkdir()
    record = isolated_env.root / "notified"
    fake = bin_dir / "notify-send"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {record}\n')
    fake.chmod(0o755)
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    bastion = sshd_factory()
    bastion.authorize(client_keypair.public_line)
    trust_host(bastion)
    add_connection("pg", "postgresql", postgres, bastion, client_keypair)
    up("pg")
    bastion.restart(new_host_key=True)  # the reconnect meets a changed host key: permanent
    row = wait_until(
        lambda: [r for r in status_json("pg") if r["state"] == "failed"], 30, "state failed"
    )[0]
    assert row["last_error"] and row["hint"]
    notified = wait_until(lambda: record.exists() and record.read_text(), 10, "notification")
    assert "tunnel-tui: pg failed" in notified
    log = (isolated_env.home / "logs" / "agent.log").read_text()
    assert "pg failed:" in log and "PRIVATE KEY" not in log


def test_two_ups_racing_to_start_the_agent_share_one(pg_setup: Setup) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tunnel_tui", "up", "pg"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    ports = {int(UP_LINE.match(out.strip())["port"]) for out, _ in outputs}  # type: ignore[index]
    assert len(ports) == 1
    assert asyncio.run(pg_query(ports.pop(), pg_setup.db, "SELECT 6")) == 6
    agents = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _agent_of_home(pid, paths.home_dir())
    ]
    assert len(agents) == 1


def _agent_of_home(pid: int, home: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"tunnel_tui.agent" in cmdline and str(home).encode() in cmdline and pid_alive(pid)


def test_cli_without_keyring_uses_the_vault_the_agent_holds(
    sshd: Any, postgres: Any, agent_reaper: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSH login with only the vault: after one `vault unlock`, commands that write
    secrets work with no terminal and no passphrase anywhere (the agent serves them)."""
    env = no_keyring_env()
    env.pop("TUNNEL_TUI_SECRETS", None)  # auto: no keyring here, so the vault
    env.pop("PYTHON_KEYRING_BACKEND", None)  # just no D-Bus session, as over SSH
    db_url = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    ssh_url = f"ssh://{sshd.user}@{sshd.host}:{sshd.port}"
    locked = cli("add", "pg", "--db", db_url, "--ssh", ssh_url, env=env, stdin="")
    assert locked.returncode == 1
    assert locked.stderr == (
        "error: no usable keyring: no D-Bus session (DBUS_SESSION_BUS_ADDRESS unset, typical "
        "in an SSH login), and the vault is locked\n"
        "hint: create the encrypted vault: tunnel-tui vault unlock (asks for a new passphrase)\n"
    )
    assert not paths.config_path().exists()

    unlocked = cli("vault", "unlock", "--passphrase-stdin", env=env, stdin="tr0ub4dor&3\n")
    assert unlocked.returncode == 0, unlocked.stderr
    added = cli(
        "add", "pg", "--db", db_url, "--ssh", ssh_url, "--db-password-stdin",
        env=env, stdin=postgres.password + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert cli("key", "generate", "spare", env=env).returncode == 0
    assert cli("key", "delete", "spare", env=env).returncode == 0
    line = cli("key", "show", "pg", env=env).stdout.strip()
    sshd.authorize(line)
    trust_host(sshd)
    # What the CLI stored through the agent is what the agent reads to bring it up:
    # this terminal has neither keyring nor vault, so `up` says so and the agent reads
    # the vault it holds.
    port = up_in("pg", env)
    assert asyncio.run(pg_query(port, postgres, "SELECT 7")) == 7

    # The agent never hands a secret back (no secret-get; the store is write-only).
    key_id = Catalog(vault_passphrase=Secret("tr0ub4dor&3")).get("pg").key_id
    with pytest.raises(UsageError, match="unknown op"):
        AgentClient().call("secret-get", name=f"key:{key_id}")
    store = AgentVaultStore.find()
    assert store is not None and store.get("key:no-such-key") is None
    with pytest.raises(SecretStoreError, match="never hands out a secret"):
        store.get(f"key:{key_id}")
    # Only the tunnel-tui entries are reachable over the socket, even for writing.
    with pytest.raises(Exception, match="must start with"):
        AgentClient().call("secret-set", name="other-app:token", value="x")

    assert cli("down", "pg", env=env).returncode == 0
    removed = cli("remove", "pg", "--yes", "--keep-remote", env=env)
    assert removed.returncode == 0, removed.stderr
    assert Path(paths.vault_path()).exists()
    assert postgres.password.encode() not in paths.config_path().read_bytes()
    assert cli("vault", "lock", env=env).returncode == 0
    again = cli("key", "generate", "later", env=env, stdin="")
    assert again.returncode == 1 and "vault unlock" in again.stderr


def test_remove_takes_a_live_tunnel_down_first(pg_setup: Setup) -> None:
    port = up("pg")
    assert asyncio.run(pg_query(port, pg_setup.db, "SELECT 1")) == 1
    result = cli("remove", "pg", "--yes", "--keep-remote", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tunnel_was"] == "up"
    assert refused(port)
    assert status_json() == []
    text = cli("remove", "pg", "--yes")
    assert text.returncode == 2 and "no connection named 'pg'" in text.stderr


def test_edit_of_a_live_tunnel_refuses_rename_and_says_when_changes_apply(
    pg_setup: Setup,
) -> None:
    up("pg")
    before = paths.config_path().read_bytes()
    renamed = cli("edit", "pg", "--rename", "pg2")
    assert renamed.returncode == 2
    assert renamed.stderr == (
        "error: cannot rename pg while its tunnel is up in the agent\n"
        "hint: take it down first: tunnel-tui down pg\n"
    )
    assert paths.config_path().read_bytes() == before
    changed = cli("edit", "pg", "--local-port", "auto")
    assert changed.returncode == 0, changed.stderr
    assert "note: pg is up with the old settings; they apply after: tunnel-tui down pg" in (
        changed.stderr
    )
    assert cli("down", "pg").returncode == 0
    assert cli("edit", "pg", "--rename", "pg2").returncode == 0
    assert [s["name"] for s in status_json()] == ["pg2"]
