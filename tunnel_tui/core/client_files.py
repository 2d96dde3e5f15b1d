"""The password files database clients read (`exec`, DESIGN.md): a libpq password file
(PGPASSFILE) and a MySQL/MariaDB option file. Pure text; whoever holds the password
writes them 0600 (core.atomic): the caller's process, or the agent when only it holds
the vault."""

from __future__ import annotations

from tunnel_tui.core.secret import Secret


def pgpass_text(host: str, port: int, user: str, password: Secret) -> bytes:
    """One .pgpass line for HOST:PORT, any database, USER ('*' if empty)."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(":", "\\:")

    who = esc(user) if user else "*"
    return f"{esc(host)}:{port}:*:{who}:{esc(password.reveal())}\n".encode()


def mysql_defaults_text(database: str, password: Secret | None) -> bytes:
    """A defaults file: the password for every client ([client]) and the database for
    the mysql/mariadb client only ([mysql]; mysqldump knows no `database` option)."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[client]"]
    if password is not None:
        lines.append(f"password={quoted(password.reveal())}")
    if database:
        lines += ["[mysql]", f"database={quoted(database)}"]
    return ("\n".join(lines) + "\n").encode()
