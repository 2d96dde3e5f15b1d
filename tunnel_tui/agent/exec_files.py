"""The password file of an `exec` whose caller has no keyring and no vault while the
agent holds the vault unlocked (DESIGN.md, "Where a secret comes from" (3)): the agent
writes it (0600, atomically) into this home's run directory, for the lease's tunnel,
and deletes it when the lease ends or is reaped. Nothing secret goes over the socket:
the reply is the file's path."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from tunnel_tui.core import paths
from tunnel_tui.core.atomic import write_private_file
from tunnel_tui.core.client_files import mysql_defaults_text, pgpass_text
from tunnel_tui.core.model import Connection, DbKind, secret_name_for_db_password


async def write_password_file(
    store: Any, home: Path, conn: Connection, port: int, pid: int
) -> Path | None:
    """The file for CONN's client on local PORT, or None when the vault has no password
    for it (or its kind has no client file). `store`: the vault the agent holds."""
    password = await asyncio.to_thread(store.get, secret_name_for_db_password(conn.name))
    if password is None:
        return None
    kind = conn.database.kind
    run = paths.ensure_private_dir(paths.run_dir(home))
    stem = f"exec-{pid}-{os.urandom(4).hex()}"
    if kind is DbKind.POSTGRESQL:
        path = run / f"{stem}.pgpass"
        text = pgpass_text(conn.local_host, port, conn.database.user, password)
    elif kind is DbKind.MYSQL:
        path = run / f"{stem}.cnf"
        text = mysql_defaults_text(conn.database.database, password)
    else:
        return None
    await asyncio.to_thread(write_private_file, path, text)
    return path
