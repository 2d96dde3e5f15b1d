"""`exec NAME -- CMD [ARGS...]`: run CMD with the tunnel ready (DESIGN.md, "exec").

The tunnel is reused when it is up; otherwise exec brings it up in the agent under a
lease (agent/leases.py) and the agent takes it down when the last lease ends (or when
exec's process is gone). The child gets the address in its environment — PGHOST,
PGPORT, PGUSER, PGDATABASE; MYSQL_HOST, MYSQL_TCP_PORT; DATABASE_URL (never with a
password); TUNNEL_TUI_HOST/TUNNEL_TUI_PORT for any kind — and the database password
only through a temporary 0600 file in this home's run directory: PGPASSFILE for
PostgreSQL, for MySQL clients a defaults file given as their first argument. The file
is removed when the child ends, also on Ctrl-C, SIGTERM or SIGHUP.

MySQL clients read option files in order, the later winning, and
`--defaults-extra-file` is read *before* ~/.my.cnf; so host, port and user go on the
command line right after it (the command line beats every option file), and the
password in the file. The user's own arguments come after ours, so theirs win.

Exit status: the child's (128+N for signal N); exec's own failures before the child
runs are 125 (tunnel or secret unavailable) and 127 (command not found), as `env`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from tunnel_tui.core.client_files import mysql_defaults_text, pgpass_text
from tunnel_tui.core.errors import SecretStoreError, TunnelTuiError, UsageError
from tunnel_tui.core.model import Connection, DbKind

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session
    from tunnel_tui.core.secret import Secret

__all__ = [
    "CommandNotFound",
    "ExecUnavailable",
    "MYSQL_CLIENTS",
    "Prepared",
    "child_env",
    "default_command",
    "run",
]

MYSQL_CLIENTS = frozenset({"mysql", "mariadb", "mysqldump", "mariadb-dump"})
# Variables that would carry a password (or point the client elsewhere): never passed on.
DROPPED = ("PGPASSWORD", "MYSQL_PWD", "PGSERVICE", "DATABASE_URL")


class ExecUnavailable(TunnelTuiError):
    """The tunnel (or a secret it needs) is not available: the child never ran."""

    exit_code = 125


class CommandNotFound(TunnelTuiError):
    exit_code = 127


@dataclass(frozen=True)
class Prepared:
    """What the child gets: its argv, its environment, and the files to remove after."""

    argv: list[str]
    env: dict[str, str]
    files: list[Path] = field(default_factory=list)


def default_command(conn: Connection) -> list[str]:
    """`exec NAME` with no command: the database's own client."""
    kind = conn.database.kind
    if kind is DbKind.POSTGRESQL:
        candidates = ["psql"]
        package = "postgresql-client"
    elif kind is DbKind.MYSQL:
        candidates = ["mariadb", "mysql"]
        package = "mariadb-client (or mysql-client)"
    else:
        why = " (its HTTP interface is what is tunnelled)" if kind is DbKind.CLICKHOUSE else ""
        raise UsageError(
            f"{conn.name} is {kind.label}{why}: tunnel-tui opens no client for it",
            hint=f"run your own: tunnel-tui exec {conn.name} -- sh -c "
            "'curl \"http://$TUNNEL_TUI_HOST:$TUNNEL_TUI_PORT/\"'",
        )
    for name in candidates:
        if shutil.which(name):
            return [name]
    raise CommandNotFound(
        f"{' or '.join(candidates)} is not installed ({kind.label}'s client)",
        hint=f"install {package}, or name a command: tunnel-tui exec {conn.name} -- CMD",
    )


def resolve_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The program argv[0] names, on the child's PATH; CommandNotFound (127) if none."""
    program = argv[0]
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        raise CommandNotFound(f"{program}: command not found")
    return found


def child_env(
    conn: Connection, port: int, base: Mapping[str, str], *, password_file: Path | None
) -> dict[str, str]:
    """The child's environment: ours minus password variables, plus the tunnel's."""
    db = conn.database
    host = conn.local_host or "127.0.0.1"
    env = {k: v for k, v in base.items() if k not in DROPPED}
    env["TUNNEL_TUI_HOST"] = host
    env["TUNNEL_TUI_PORT"] = str(port)
    env["DATABASE_URL"] = database_url(conn, port)
    if db.kind is DbKind.POSTGRESQL:
        env.update(PGHOST=host, PGPORT=str(port))
        if db.user:
            env["PGUSER"] = db.user
        if db.database:
            env["PGDATABASE"] = db.database
        sslmode = db.option("sslmode")
        if sslmode:
            env["PGSSLMODE"] = sslmode
        if password_file is not None:
            env["PGPASSFILE"] = str(password_file)
    elif db.kind is DbKind.MYSQL:
        env.update(MYSQL_HOST=host, MYSQL_TCP_PORT=str(port))
    return env


def database_url(conn: Connection, port: int) -> str:
    """The database at the local end of the tunnel; never a password."""
    db = conn.database
    user = f"{quote(db.user, safe='')}@" if db.user else ""
    path = f"/{quote(db.database, safe='')}" if db.database else ""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in db.options)
    scheme = db.kind.value
    return f"{scheme}://{user}{conn.local_host}:{port}{path}" + (f"?{query}" if query else "")


def prepare(
    conn: Connection,
    port: int,
    argv: Sequence[str],
    password: Secret | None,
    run_dir: Path,
    base_env: Mapping[str, str],
    *,
    agent_file: Path | None = None,
) -> Prepared:
    """Write the password file (if any) and build argv and env; `agent_file`: the one
    the agent wrote instead (the vault only it holds has the password). On an error
    the files so far are removed."""
    from tunnel_tui.core.atomic import write_private_file

    files: list[Path] = []
    argv = list(argv)
    stem = f"exec-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        password_file: Path | None = None
        kind = conn.database.kind
        if agent_file is not None:
            files.append(agent_file)
        if kind is DbKind.POSTGRESQL and agent_file is not None:
            password_file = agent_file
        elif kind is DbKind.POSTGRESQL and password is not None:
            password_file = run_dir / f"{stem}.pgpass"
            files.append(password_file)
            write_private_file(password_file, pgpass_text(
                conn.local_host, port, conn.database.user, password))
        elif kind is DbKind.MYSQL and Path(argv[0]).name in MYSQL_CLIENTS:
            defaults = agent_file or run_dir / f"{stem}.cnf"
            if agent_file is None:
                files.append(defaults)
                write_private_file(defaults, mysql_defaults_text(conn.database.database,
                                                                 password))
            ours = [f"--defaults-extra-file={defaults}", f"--host={conn.local_host}",
                    f"--port={port}"]
            if conn.database.user:
                ours.append(f"--user={conn.database.user}")
            argv = [argv[0], *ours, *argv[1:]]
        env = child_env(conn, port, base_env, password_file=password_file)
    except BaseException:
        remove_files(files)
        raise
    return Prepared(argv, env, files)


def remove_files(files: Sequence[Path]) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _password(session: Session, conn: Connection) -> tuple[Secret | None, str | None]:
    """(the database password from the caller's keyring or the vault unlocked here,
    None) or, with no store here, (None, why)."""
    try:
        return session.catalog().db_password(conn.name), None
    except SecretStoreError as exc:
        return None, exc.message


def wants_password_file(conn: Connection, argv: Sequence[str]) -> bool:
    kind = conn.database.kind
    return kind is DbKind.POSTGRESQL or (
        kind is DbKind.MYSQL and Path(argv[0]).name in MYSQL_CLIENTS
    )


def _agent_file(
    session: Session, lease_id: str, port: int, here: str, warn: Callable[[str], None]
) -> Path | None:
    """No store here: the agent writes the password file if the vault it holds has the
    password (DESIGN.md, "Where a secret comes from" (3)); it deletes it with the lease."""
    from tunnel_tui.agent.client import AgentClient

    try:
        reply = AgentClient(session.home).call("lease-password-file", lease_id=lease_id,
                                               port=port)
    except TunnelTuiError as exc:
        warn(f"note: no database password passed (here: {here}; the agent: {exc.message}); "
             "the client may ask for it")
        return None
    path = reply.get("path")
    return Path(path) if isinstance(path, str) else None


@contextlib.contextmanager
def leased(session: Session, name: str) -> Iterator[str]:
    """A lease on NAME for this process, released on the way out (reaped by the agent
    should this process die first)."""
    from tunnel_tui.agent.client import AgentClient, ensure_agent

    try:
        client = ensure_agent(session.home)
        lease_id = str(client.lease(name, os.getpid())["lease_id"])
    except UsageError:
        raise
    except TunnelTuiError as exc:  # no agent, or an older one: the tunnel is unavailable
        raise ExecUnavailable(exc.message, hint=exc.hint) from None
    try:
        yield lease_id
    finally:
        with contextlib.suppress(TunnelTuiError, OSError):
            AgentClient(session.home).release(lease_id)


def run(
    session: Session,
    name: str,
    argv: Sequence[str],
    *,
    base_env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    started: Callable[[int], None] | None = None,
) -> int:
    """Run argv (empty: the database's client) with NAME's tunnel; the child's exit
    status. Raises UsageError (2), ExecUnavailable (125), CommandNotFound (127)."""
    from tunnel_tui.actions import tunnels
    from tunnel_tui.actions.child import Interrupted, run_foreground, signals_unwind
    from tunnel_tui.core import paths

    conn = session.catalog().get(name)  # unknown NAME: exit 2, nothing started
    argv = list(argv) or default_command(conn)
    env_base = dict(os.environ if base_env is None else base_env)
    resolve_command(argv, env_base)  # 127 before any tunnel is touched
    password, no_store = _password(session, conn)
    run_dir = paths.ensure_private_dir(paths.run_dir(session.home))
    try:
        with signals_unwind(), leased(session, name) as lease_id:
            try:
                status = tunnels.up(session, name, lease_id=lease_id).status
            except UsageError:
                raise
            except TunnelTuiError as exc:
                raise ExecUnavailable(exc.message, hint=exc.hint) from None
            if not status.local_port:
                raise ExecUnavailable(f"{name} has no local port", hint=status.hint)
            agent_file = None
            if no_store is not None and wants_password_file(conn, argv):
                agent_file = _agent_file(session, lease_id, status.local_port, no_store, warn)
            prepared = prepare(conn, status.local_port, argv, password, run_dir, env_base,
                               agent_file=agent_file)
            try:
                return run_foreground(prepared.argv, prepared.env, started=started)
            finally:
                remove_files(prepared.files)
    except Interrupted as exc:
        return 128 + exc.signum
