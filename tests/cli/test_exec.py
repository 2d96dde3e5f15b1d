"""`tunnel-tui exec NAME -- CMD` (issue 17) through the real CLI, against a real OpenSSH
bastion with real PostgreSQL and MariaDB behind it, and the real clients (psql,
mariadb, mysqldump). The agent is started by exec itself and stopped by PID."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import (
    Setup,
    add_ready_connection,
    cli,
    no_keyring_env,
    refused,
    status_json,
    trust_host,
    up,
)
from tests.fixtures.agent import pid_alive
from tests.fixtures.waiting import wait_until
from tunnel_tui.core import paths


@pytest.fixture
def pg(sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any,
       agent_reaper: None) -> Setup:
    return add_ready_connection("pg", "postgresql", postgres, sshd, client_keypair)


@pytest.fixture
def my(sshd: Any, mariadb: Any, client_keypair: Any, secret_service: Any,
       agent_reaper: None) -> Setup:
    return add_ready_connection("my", "mysql", mariadb, sshd, client_keypair)


def exec_(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("exec", *args, env=env)


def state(name: str) -> str:
    return str(status_json(name)[0]["state"])


def leftovers() -> list[str]:
    run = paths.run_dir()
    if not run.exists():
        return []
    return sorted(p.name for p in run.iterdir() if p.name.startswith("exec-"))


def test_psql_runs_through_its_own_tunnel_which_goes_down_after(pg: Setup) -> None:
    result = exec_("pg", "--", "psql", "-tAc", "select current_user || ':' || current_database()")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{pg.db.user}:{pg.db.database}"
    assert state("pg") == "down"  # exec brought it up: exec's lease ended, so it went down
    assert leftovers() == []

    # No command: the database's own client, reading the script from our stdin.
    result = cli("exec", "pg", stdin="select 40 + 2;\n")
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout


def test_exit_status_is_the_childs_and_exec_own_failures(pg: Setup, client_keypair: Any) -> None:
    assert exec_("pg", "--", "sh", "-c", "exit 7").returncode == 7
    assert exec_("pg", "--", "psql", "-c", "select 1/0").returncode != 0
    killed = exec_("pg", "--", "sh", "-c", "kill -TERM $$")
    assert killed.returncode == 128 + signal.SIGTERM

    missing = exec_("pg", "--", "no-such-command-xyz")
    assert missing.returncode == 127
    assert missing.stderr.startswith("error: no-such-command-xyz: command not found")

    unknown = exec_("nope", "--", "true")
    assert unknown.returncode == 2 and "no connection named 'nope'" in unknown.stderr

    pg.sshd.deauthorize(client_keypair.public_line)  # the bastion no longer takes the key
    refused_up = exec_("pg", "--", "true")
    assert refused_up.returncode == 125, refused_up.stderr
    assert leftovers() == []


def test_no_password_in_env_or_argv_and_the_passfile_is_private(pg: Setup) -> None:
    env = dict(os.environ, PGPASSWORD="canary-from-parent", MYSQL_PWD="canary-too")
    script = (
        'stat -c %a "$PGPASSFILE"; env; echo "ARGV $0 $*"; '
        "cat /proc/$$/cmdline | tr '\\0' ' '; echo; psql -tAc 'select 1'"
    )
    result = exec_("pg", "--", "sh", "-c", script, "x", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert pg.db.password not in out
    assert "canary" not in out
    assert out.splitlines()[0] == "600"
    variables = dict(line.split("=", 1) for line in out.splitlines() if "=" in line
                     and line.split("=", 1)[0].isupper())
    port = variables["PGPORT"]
    assert variables["PGHOST"] == "127.0.0.1"
    assert variables["PGUSER"] == pg.db.user and variables["PGDATABASE"] == pg.db.database
    assert variables["DATABASE_URL"] == (
        f"postgresql://{pg.db.user}@127.0.0.1:{port}/{pg.db.database}"
    )
    assert Path(variables["PGPASSFILE"]).parent == paths.run_dir()
    assert out.splitlines()[-1] == "1"  # psql found the password in the file
    assert leftovers() == []


def test_an_already_up_tunnel_stays_up(pg: Setup) -> None:
    port = up("pg")
    result = exec_("pg", "--", "sh", "-c", 'echo "$PGPORT"')
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == port
    assert state("pg") == "up"
    assert cli("down", "pg").returncode == 0


def test_a_plain_up_during_exec_keeps_the_tunnel(pg: Setup) -> None:
    script = f"{sys.executable} -m tunnel_tui up pg >/dev/null && psql -tAc 'select 5'"
    result = exec_("pg", "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
    assert state("pg") == "up"  # someone asked for it beyond exec's lifetime
    assert cli("down", "pg").returncode == 0


def start_exec(*command: str) -> tuple[subprocess.Popen[str], list[str]]:
    """exec in its own session (as a terminal's foreground job), with the first two
    lines the child prints: its pid and its password file."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunnel_tui", "exec", "pg", "--", *command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip(), proc.stdout.readline().strip()]
    assert all(lines), proc.stderr.read() if proc.stderr else ""
    return proc, lines


SLEEPER = ("sh", "-c", 'echo $$; echo "$PGPASSFILE"; trap "exit 130" INT; sleep 60 & wait')


@pytest.mark.parametrize("how", ["to-exec", "terminal"])
def test_ctrl_c_ends_the_child_removes_the_file_and_the_tunnel(pg: Setup, how: str) -> None:
    proc, (child, passfile) = start_exec(*SLEEPER)
    try:
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        assert state("pg") == "up"
        if how == "to-exec":
            os.kill(proc.pid, signal.SIGINT)  # forwarded to the child
        else:
            os.killpg(proc.pid, signal.SIGINT)  # a Ctrl-C: the whole foreground group
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert not pid_alive(int(child))
    assert not os.path.exists(passfile)
    assert state("pg") == "down"


def test_sigterm_to_exec_is_forwarded_and_cleans_up(pg: Setup) -> None:
    proc, (child, passfile) = start_exec("sh", "-c", 'echo $$; echo "$PGPASSFILE"; exec sleep 60')
    try:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert not os.path.exists(passfile)
    assert state("pg") == "down"


def test_a_killed_exec_leaves_a_lease_the_agent_reaps(pg: Setup) -> None:
    proc, (child, _passfile) = start_exec("sh", "-c", 'echo $$; echo "$PGPASSFILE"; exec sleep 60')
    port = status_json("pg")[0]["local_port"]
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        os.kill(int(child), signal.SIGKILL)
    wait_until(lambda: state("pg") == "down", 15, "the agent to reap exec's lease")
    assert refused(port)


def test_mariadb_and_mysqldump_with_a_users_option_file_pointing_elsewhere(my: Setup) -> None:
    # The user's ~/.my.cnf points elsewhere: exec's host, port and user still win.
    Path(os.environ["HOME"], ".my.cnf").write_text(
        "[client]\nhost=192.0.2.1\nport=1\nuser=someone-else\n"
    )
    result = exec_("my", "--", "mariadb", "-N", "-e", "select current_user(), database()")
    assert result.returncode == 0, result.stderr
    user, database = result.stdout.split()
    assert user.startswith(f"{my.db.user}@") and database == my.db.database

    dump = exec_("my", "--", "mysqldump", "--no-data", my.db.database)
    assert dump.returncode == 0, dump.stderr
    assert "-- Dump completed" in dump.stdout

    shown = exec_("my", "--", "sh", "-c", 'env; echo "$MYSQL_HOST:$MYSQL_TCP_PORT"')
    assert my.db.password not in shown.stdout
    assert shown.stdout.splitlines()[-1].startswith("127.0.0.1:")

    opened = cli("exec", "my", stdin="select 6 * 7;\n")  # no command: the client itself
    assert opened.returncode == 0, opened.stderr
    assert "42" in opened.stdout
    assert state("my") == "down"
    assert leftovers() == []


def test_with_the_vault_held_only_by_the_agent_the_agent_writes_the_passfile(
    sshd: Any, postgres: Any, agent_reaper: None
) -> None:
    """An SSH login: no keyring, no vault here; after `vault unlock` the agent holds it.
    The agent writes the password file (DESIGN.md, "Where a secret comes from" (3))."""
    env = no_keyring_env()
    env.pop("TUNNEL_TUI_SECRETS", None)
    env.pop("PYTHON_KEYRING_BACKEND", None)  # just no D-Bus session, as over SSH
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin="tr0ub4dor&3\n").returncode == 0
    added = cli(
        "add", "pg", "--db",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}", "--db-password-stdin",
        env=env, stdin=postgres.password + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    sshd.authorize(cli("key", "show", "pg", env=env).stdout.strip())
    trust_host(sshd)

    script = 'stat -c %a "$PGPASSFILE"; env; psql -tAc "select 8"'
    result = exec_("pg", "--", "sh", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "600" and lines[-1] == "8"
    assert "note:" not in result.stderr  # the password came: from the agent's vault
    assert postgres.password not in result.stdout + result.stderr
    assert leftovers() == []
    assert state("pg") == "down"


def test_no_client_for_clickhouse_and_a_missing_client_is_127(secret_service: Any) -> None:
    from tunnel_tui.core.catalog import Catalog, GenerateKey

    catalog = Catalog()
    catalog.add("ch", "clickhouse://default@10.0.0.7/logs", "ssh://t@bastion.example.com",
                key=GenerateKey())
    catalog.add("pg", "postgresql://app@10.0.0.5/appdb", "ssh://t@bastion.example.com",
                key=GenerateKey(name="pgkey"))
    ch = exec_("ch")
    assert ch.returncode == 2
    assert "ClickHouse" in ch.stderr and "opens no client" in ch.stderr
    no_psql = exec_("pg", env=dict(os.environ, PATH="/nonexistent"))
    assert no_psql.returncode == 127
    assert no_psql.stderr.splitlines()[0] == "error: psql is not installed (PostgreSQL's client)"
    assert not (paths.run_dir() / "agent.sock").exists()  # nothing was started
