"""`tunnel-tui exec NAME -- CMD [ARGS...]`: run a command with the tunnel ready
(actions/exec.py does the work; this parses and exits with the child's status)."""

from __future__ import annotations

import sys

import click

from tunnel_tui.commands.completion import connection_names


@click.command(
    "exec",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("name", shell_complete=connection_names)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def exec_(name: str, command: tuple[str, ...]) -> None:
    """Run COMMAND with tunnel NAME up; exit with COMMAND's status.

    The tunnel is reused if it is up; otherwise it is brought up for COMMAND and
    taken down after. COMMAND gets PGHOST, PGPORT, PGUSER, PGDATABASE and a
    temporary PGPASSFILE (PostgreSQL); MYSQL_HOST, MYSQL_TCP_PORT and, for
    mysql/mariadb/mysqldump/mariadb-dump, a temporary defaults file with the
    password (MySQL/MariaDB); DATABASE_URL (no password); TUNNEL_TUI_HOST and
    TUNNEL_TUI_PORT. The password is never in the environment or argv.

    \b
      tunnel-tui exec prod                      # psql / mariadb, ready to type
      tunnel-tui exec prod -- pg_dump app > app.sql
      tunnel-tui exec prod -- psql -c 'select 1'
      tunnel-tui exec shop -- mysqldump shop > shop.sql

    Exit status: COMMAND's; 125 when the tunnel or a secret is unavailable, 127
    when COMMAND is not found, 2 for bad input.
    """
    from tunnel_tui.actions import exec as exec_action
    from tunnel_tui.commands.agentctl import _session

    argv = list(command)
    if argv[:1] == ["--"]:  # click passes it on once it stopped parsing after NAME
        argv = argv[1:]
    sys.exit(exec_action.run(_session(), name, argv))
