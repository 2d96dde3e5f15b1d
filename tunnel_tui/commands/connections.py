"""`add`, `edit`, `list`, `show`, `remove`: connections (a database behind a bastion).

Bad input is one line on stderr and exit 2, with nothing changed on disk: the catalog
checks everything before it writes. Secrets come from stdin or a hidden prompt,
never from argv or the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tunnel_tui.commands.completion import connection_names, key_names
from tunnel_tui.commands.output import (
    CONNECTION_JSON_HELP,
    connection_json,
    print_json,
    table,
    warn,
)
from tunnel_tui.core.catalog import (
    UNSET,
    AddResult,
    Catalog,
    GenerateKey,
    ImportKey,
    KeyChoice,
    ReuseKey,
    SecretStore,
)
from tunnel_tui.core.errors import KeyImportError, NotFoundError, SecretStoreError, UsageError
from tunnel_tui.core.model import Connection, Key, SshEndpoint
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.urls import format_db_url, parse_port

# --- secrets from stdin or a prompt -------------------------------------------------


class StdinLines:
    """Secrets piped on stdin, one per line, in a fixed order (passphrase first)."""

    def read(self, what: str, flag: str) -> Secret:
        if sys.stdin.isatty():
            value = click.prompt(
                what[:1].upper() + what[1:],
                hide_input=True,
                default="",
                show_default=False,
                err=True,  # stdout stays clean for --json
            )
        else:
            line = sys.stdin.readline()
            value = line[:-1] if line.endswith("\n") else line
            value = value[:-1] if value.endswith("\r") else value
        if not value:
            raise UsageError(f"no {what} on stdin", hint=f"{flag} reads one line from stdin")
        return Secret(value)


class _LazyStore:
    """Opens the secret store on first use. With no usable keyring (an SSH login), the
    vault: through the agent when `tunnel-tui vault unlock` left it unlocked there
    (no passphrase crosses argv or the environment), else by asking its passphrase on a
    terminal; with neither, the error says to run `vault unlock` first."""

    def __init__(self, home: Path | None = None) -> None:
        self._home = home
        self._store: SecretStore | None = None

    def _open(self) -> SecretStore:
        if self._store is None:
            from tunnel_tui.core import secrets

            try:
                self._store = secrets.open_store(self._home)
            except SecretStoreError as exc:
                if "vault" not in exc.message:
                    raise
                self._store = _agent_vault(self._home)
                if self._store is None:
                    if not sys.stdin.isatty():
                        raise
                    passphrase = click.prompt("Vault passphrase", hide_input=True, err=True)
                    self._store = secrets.open_store(
                        self._home, vault_passphrase=Secret(passphrase)
                    )
        return self._store

    @property
    def backend_name(self) -> str:
        return self._open().backend_name

    def get(self, name: str) -> Secret | None:
        return self._open().get(name)

    def exists(self, name: str) -> bool:
        from tunnel_tui.core.catalog import secret_exists

        return secret_exists(self._open(), name)

    def set(self, name: str, value: Secret) -> None:
        self._open().set(name, value)

    def delete(self, name: str) -> None:
        self._open().delete(name)


def _agent_vault(home: Path | None) -> SecretStore | None:
    try:
        from tunnel_tui.agent.client import AgentVaultStore
    except ImportError:  # a build without the agent
        return None
    return AgentVaultStore.find(home)


def open_catalog() -> Catalog:
    return Catalog(secrets=_LazyStore())


# --- the key options (shared by add, edit and key import) -----------------------------


def read_identity(path_text: str, stdin: StdinLines, passphrase_stdin: bool) -> ImportKey:
    """An --identity file, copied (never referenced); asks the passphrase if needed."""
    from tunnel_tui.core import keys

    path = Path(path_text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the identity file {str(path)!r}: {exc.strerror}", field="identity"
        ) from None
    try:
        keys.load_private(data)  # cheap for an encrypted key: nothing is decrypted yet
        encrypted = False
    except KeyImportError as exc:
        if exc.field != "passphrase":
            raise  # not a private key (a .pub, a .ppk, garbage): one error, no warning
        encrypted = True
    if encrypted and not passphrase_stdin and not sys.stdin.isatty():
        raise UsageError(
            f"{path} is encrypted and there is no terminal to ask its passphrase on",
            field="passphrase",
            hint="pipe it with --passphrase-stdin",
        )
    # OpenSSH's warning, only for a file that really holds a private key we will use.
    warning = keys.file_permission_warning(path)
    if warning:
        warn(warning)
    if passphrase_stdin:
        return ImportKey(data, stdin.read("key passphrase", "--passphrase-stdin"))
    if encrypted:
        value = click.prompt(f"Passphrase for {path}", hide_input=True, err=True)
        return ImportKey(data, Secret(value))
    return ImportKey(data, None)


def key_choice(
    generate_key: bool,
    key_type: str | None,
    identity: str | None,
    use_key: str | None,
    key_name: str | None,
    passphrase_stdin: bool,
    stdin: StdinLines,
) -> KeyChoice | None:
    chosen = [
        flag
        for flag, on in (
            ("--generate-key", generate_key or key_type is not None),
            ("--identity", identity is not None),
            ("--use-key", use_key is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(
            f"{' and '.join(chosen)} exclude each other",
            field="key",
            hint="pick one way to get the key",
        )
    if passphrase_stdin and identity is None:
        raise UsageError("--passphrase-stdin goes with --identity", field="passphrase")
    if key_name is not None and use_key is not None:
        raise UsageError("--key-name names a new key; --use-key reuses one", field="key.name")
    if identity is not None:
        imported = read_identity(identity, stdin, passphrase_stdin)
        return ImportKey(imported.data, imported.passphrase, key_name)
    if use_key is not None:
        return ReuseKey(use_key)
    if chosen or key_name is not None:
        return GenerateKey(key_type or "ed25519", key_name)
    return None


def parse_local_port(text: str | None) -> Any:
    """None -> unchanged; "auto" -> None (picked on first up); else the port."""
    if text is None:
        return UNSET
    if text.strip().lower() == "auto":
        return None
    return parse_port(text, field="local_port", what="local port")


def key_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--generate-key", is_flag=True, help="Generate a new key pair (the default for add)."
        ),
        click.option(
            "--key-type",
            type=click.Choice(["ed25519", "rsa"]),
            default=None,
            help="Type of a generated key: ed25519 (default) or rsa (4096 bits).",
        ),
        click.option(
            "--identity",
            metavar="FILE",
            help="Import a private key file (OpenSSH, PKCS#1, PKCS#8, SEC1; maybe "
            "encrypted). It is copied into the keyring, decrypted.",
        ),
        click.option("--use-key", metavar="KEY", help="Reuse a stored key (id or name).",
                     shell_complete=key_names),
        click.option(
            "--key-name", metavar="NAME", help="Name of a new key (default: the connection's name)."
        ),
        click.option(
            "--passphrase-stdin",
            is_flag=True,
            help="Read the --identity passphrase from stdin (first line).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# --- printing ----------------------------------------------------------------------


def _describe(conn: Connection) -> str:
    via = " -> ".join(h.display for h in conn.hops)
    port = conn.local_port if conn.local_port is not None else "auto"
    return f"{conn.database.kind.label} {conn.database.target} via {via} (local port {port})"


def _print_key_to_install(result: AddResult, catalog: Catalog, *, waiting: bool = False) -> None:
    from tunnel_tui.core.keys import authorized_keys_line

    conn = result.connection
    click.echo(authorized_keys_line(result.key.public_key, result.key.comment))
    first = conn.hops[0]
    where = f"~{first.user}/.ssh/authorized_keys on {_host(first)}"
    if len(conn.hops) > 1:
        where += " (and on " + ", ".join(_host(h) for h in conn.hops[1:]) + ")"
    if waiting:
        click.echo(f"Add this line to {where}; the agent brings {conn.name} up once it is in.")
    else:
        click.echo(f"Add this line to {where}, then run: tunnel-tui validate {conn.name}")
    click.echo(
        f"(For a line that allows only this tunnel: tunnel-tui key show {conn.name} --restricted)"
    )


def _host(hop: SshEndpoint) -> str:
    return hop.host if hop.port == 22 else f"{hop.host}:{hop.port}"


def _result_json(result: AddResult) -> dict[str, Any]:
    from tunnel_tui.core.keys import authorized_keys_line

    out = connection_json(result.connection, result.key)
    out["key_generated"] = result.generated
    out["key_created"] = result.new_key
    out["authorized_keys_line"] = authorized_keys_line(result.key.public_key, result.key.comment)
    return out


# --- commands ------------------------------------------------------------------------

_ADD_HELP = """Add a connection: the database as the bastion sees it, and the bastion.

\b
  tunnel-tui add prod --db postgresql://app@10.0.12.34:5432/app?sslmode=require \\
      --ssh ssh://tunnel@bastion.example.com:22 --db-password-stdin < pw.txt

By default a new ed25519 key is generated and its public key line printed, ready
for the bastion's authorized_keys. With both --passphrase-stdin and
--db-password-stdin the passphrase is the first line and the password the second.

--json prints the connection (see `list --help`) plus key_generated, key_created
and authorized_keys_line.
"""


@click.command(help=_ADD_HELP)
@click.argument("name")
@click.option(
    "--db",
    "db_url",
    required=True,
    metavar="URL",
    help="postgresql://, mysql://, mariadb://, clickhouse://, vertica://, trino://",
)
@click.option("--ssh", "ssh_url", required=True, metavar="URL", help="ssh://user@bastion:22")
@click.option(
    "--jump",
    "jumps",
    multiple=True,
    metavar="URL",
    help="A jump host before the bastion (repeatable, workstation outward).",
)
@key_options
@click.option(
    "--local-port",
    metavar="N|auto",
    help="Local port on 127.0.0.1 (default: picked free on first up, then kept).",
)
@click.option(
    "--db-password-stdin", is_flag=True, help="Read the database password from stdin (one line)."
)
@click.option("--accept-host-key", "accept_host_keys", multiple=True, metavar="SHA256:…",
              help="Check the hops' host keys now and trust an unknown one with exactly "
                   "this fingerprint (the one you checked). Once per hop.")
@click.option("--accept-new-host-key", is_flag=True,
              help="Check the hops' host keys now and trust ANY unknown one (for scripts).")
@click.option("--autostart", is_flag=True,
              help="The agent brings this tunnel up whenever it starts (see `service`).")
@click.option(
    "--wait-for-key", "wait_minutes", type=float, metavar="MINUTES",
    help="Then up --wait-for-key (1-60): the agent brings the tunnel up once the bastion "
    "accepts the key. On first contact it needs --accept-host-key.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add(
    name: str,
    db_url: str,
    ssh_url: str,
    jumps: tuple[str, ...],
    generate_key: bool,
    key_type: str | None,
    identity: str | None,
    use_key: str | None,
    key_name: str | None,
    passphrase_stdin: bool,
    local_port: str | None,
    db_password_stdin: bool,
    wait_minutes: float | None,
    accept_host_keys: tuple[str, ...],
    accept_new_host_key: bool,
    autostart: bool,
    as_json: bool,
) -> None:
    from tunnel_tui.core.known_hosts import parse_fingerprints

    accept = parse_fingerprints(accept_host_keys)  # malformed: exit 2 before anything
    if wait_minutes is not None:
        from tunnel_tui.actions.waiting import check_minutes

        check_minutes(wait_minutes)  # 1-60, else exit 2 before anything
    stdin = StdinLines()
    parsed_port = parse_local_port(local_port)
    port: int | None = None if parsed_port is UNSET else parsed_port
    catalog = open_catalog()
    # Cheap checks first, so a taken name is reported before a passphrase is asked.
    catalog.check_new(name, db_url, ssh_url, jumps=jumps, local_port=port)
    choice = key_choice(
        generate_key, key_type, identity, use_key, key_name, passphrase_stdin, stdin
    )
    password = stdin.read("database password", "--db-password-stdin") if db_password_stdin else None
    result = catalog.add(
        name,
        db_url,
        ssh_url,
        jumps=jumps,
        key=choice or GenerateKey(),
        local_port=port,
        db_password=password,
        autostart=autostart,
    )
    met = _meet_host_keys(name, accept, accept_new_host_key)
    refused = met is not None and any(hop.refused for hop in met)
    waited = None
    if wait_minutes is not None and not refused:
        from tunnel_tui.commands.agentctl import start_wait

        if not as_json:
            _added(name, result, catalog, met, waiting=True)
        waited = start_wait(name, wait_minutes, (), False, as_json, echo=not as_json)
    if as_json:
        out = _result_json(result)
        if met is not None:
            out["host_keys"] = [{"hop": h.label, "fingerprint": h.fingerprint or None,
                                 "outcome": h.outcome} for h in met]
        if waited is not None:
            out["tunnel"] = waited.to_json()
        print_json(out)
    elif waited is None:
        _added(name, result, catalog, met)
    if refused:
        sys.exit(1)  # the connection is added; its host key is not trusted


def _added(
    name: str, result: AddResult, catalog: Catalog, met: list[Any] | None, *,
    waiting: bool = False,
) -> None:
    click.echo(f"Added {name}: {_describe(result.connection)}")
    _key_summary(result)
    for hop in met or ():
        click.echo(f"Host key of {hop.describe()}")
    if result.generated or result.new_key:
        _print_key_to_install(result, catalog, waiting=waiting)


def _meet_host_keys(name: str, accept: frozenset[str], accept_new: bool) -> list[Any] | None:
    """`add --accept-host-key/--accept-new-host-key`: trust the hops' keys now."""
    if not accept and not accept_new:
        return None
    import asyncio

    from tunnel_tui.actions import host_keys
    from tunnel_tui.actions.session import Session

    return asyncio.run(host_keys.meet(Session(), name, accept_host_keys=accept,
                                      accept_new=accept_new))


def _key_summary(result: AddResult) -> None:
    key = result.key
    how = "new key" if result.generated else "imported key" if result.new_key else "key"
    click.echo(f"Uses {how} {key.name} ({key.id}, {key.type.value}, {key.fingerprint})")


@click.command(
    help="Change a connection: the flags of add; what is not given stays.\n\n"
    "--local-port auto forgets the saved port. --json prints the connection "
    "as in `show --json`."
)
@click.argument("name", shell_complete=connection_names)
@click.option("--db", "db_url", metavar="URL", help="New database URL.")
@click.option("--ssh", "ssh_url", metavar="URL", help="New bastion ssh://user@host:port.")
@click.option(
    "--jump", "jumps", multiple=True, metavar="URL", help="Replace the jump hosts (repeatable)."
)
@click.option("--no-jumps", is_flag=True, help="Remove all jump hosts.")
@key_options
@click.option("--local-port", metavar="N|auto", help="A fixed local port, or auto.")
@click.option("--db-password-stdin", is_flag=True, help="Read a new database password (one line).")
@click.option("--clear-db-password", is_flag=True, help="Delete the stored database password.")
@click.option("--rename", metavar="NEW", help="Give the connection a new name.")
@click.option("--autostart/--no-autostart", default=None,
              help="Whether the agent brings this tunnel up whenever it starts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def edit(
    name: str,
    db_url: str | None,
    ssh_url: str | None,
    jumps: tuple[str, ...],
    no_jumps: bool,
    generate_key: bool,
    key_type: str | None,
    identity: str | None,
    use_key: str | None,
    key_name: str | None,
    passphrase_stdin: bool,
    local_port: str | None,
    db_password_stdin: bool,
    clear_db_password: bool,
    rename: str | None,
    autostart: bool | None,
    as_json: bool,
) -> None:
    if jumps and no_jumps:
        raise UsageError("--jump and --no-jumps exclude each other", field="jump")
    if db_password_stdin and clear_db_password:
        raise UsageError(
            "--db-password-stdin and --clear-db-password exclude each other", field="db.password"
        )
    stdin = StdinLines()
    port = parse_local_port(local_port)
    catalog = open_catalog()
    old_key_id = catalog.get(name).key_id
    live = _live_state(name)
    if live and rename and rename != name:
        raise UsageError(
            f"cannot rename {name} while its tunnel is {live} in the agent",
            field="name",
            hint=f"take it down first: tunnel-tui down {name}",
        )
    choice = key_choice(
        generate_key, key_type, identity, use_key, key_name, passphrase_stdin, stdin
    )
    password = stdin.read("database password", "--db-password-stdin") if db_password_stdin else None
    result = catalog.edit(
        name,
        db_url=db_url,
        ssh_url=ssh_url,
        jumps=() if no_jumps else (jumps or None),
        key=choice,
        local_port=port,
        db_password=password,
        clear_db_password=clear_db_password,
        rename=rename,
        autostart=autostart,
    )
    if as_json:
        print_json(_result_json(result))
        return
    renamed = f" (now {result.connection.name})" if result.connection.name != name else ""
    click.echo(f"Changed {name}{renamed}: {_describe(result.connection)}")
    if live:
        warn(
            f"note: {name} is {live} with the old settings; they apply after: "
            f"tunnel-tui down {name} && tunnel-tui up {name}"
        )
    if choice is not None:
        _key_summary(result)
        if result.generated or result.new_key:
            _print_key_to_install(result, catalog)
        if old_key_id != result.key.id and not catalog.users_of(old_key_id):
            old = catalog.key(old_key_id)
            click.echo(
                f"Key {old.name} is no longer used; once its line is off the bastion: "
                f"tunnel-tui key delete {old.name} (rotate-key does all this without downtime)"
            )


@click.command(name="list", help="List connections.\n\n" + CONNECTION_JSON_HELP)
@click.option("--json", "as_json", is_flag=True, help="An array of connection objects.")
def list_(as_json: bool) -> None:
    catalog = Catalog()
    cfg = catalog.load()
    conns = [c for _, c in sorted(cfg.connections.items())]
    if as_json:
        print_json([connection_json(c, cfg.keys.get(c.key_id)) for c in conns])
        return
    if not conns:
        click.echo("No connections yet. Add one with: tunnel-tui add NAME --db URL --ssh URL")
        return
    rows = [
        (
            c.name,
            c.database.kind.value,
            c.database.target,
            " -> ".join(h.display for h in c.hops),
            c.local_port if c.local_port is not None else "auto",
            _key_label(cfg.keys.get(c.key_id), c.key_id),
        )
        for c in conns
    ]
    click.echo(table(("NAME", "KIND", "TARGET", "BASTION", "LOCAL", "KEY"), rows))


def _key_label(key: Key | None, key_id: str) -> str:
    return key.name if key else key_id


@click.command(help="Show one connection.\n\n" + CONNECTION_JSON_HELP)
@click.argument("name", shell_complete=connection_names)
@click.option("--json", "as_json", is_flag=True, help="The connection as one JSON object.")
def show(name: str, as_json: bool) -> None:
    catalog = Catalog()
    cfg = catalog.load()
    conn = catalog.get(name)
    key = cfg.keys.get(conn.key_id)
    if as_json:
        print_json(connection_json(conn, key))
        return
    ka = conn.keepalive
    local = (
        f"{conn.local_host}:{conn.local_port}"
        if conn.local_port is not None
        else f"{conn.local_host} (port picked on first up, then kept)"
    )
    users = cfg.users_of(conn.key_id)
    shared = [u for u in users if u != name]
    key_text = _key_label(key, conn.key_id)
    if key:
        key_text += f" ({key.id}, {key.type.value}, {key.fingerprint})"
    if shared:
        key_text += f", shared with {', '.join(shared)}"
    rows: list[tuple[str, str]] = [
        ("database", format_db_url(conn.database)),
        ("target", f"{conn.database.target} (as the bastion sees it)"),
        ("bastion", conn.bastion.display),
    ]
    if conn.jumps:
        rows.append(("jumps", " -> ".join(j.display for j in conn.jumps)))
    rows += [
        ("key", key_text),
        ("local", local),
        (
            "keepalive",
            f"every {ka.interval:g} s, down after {ka.count_max} missed "
            f"(~{ka.interval * (ka.count_max + 1):g} s)",
        ),
    ]
    click.echo(conn.name)
    width = max(len(k) for k, _ in rows)
    for label, value in rows:
        click.echo(f"  {label.ljust(width)}  {value}")


def _live_state(name: str) -> str | None:
    """The agent's state of tunnel `name` when it is not down (None: down, or no agent)."""
    try:
        from tunnel_tui.agent.client import AgentClient, AgentNotRunning
    except ImportError:  # a build without the agent
        return None
    try:
        (status,) = AgentClient().status(name)
    except (AgentNotRunning, NotFoundError):
        return None
    return None if status.state.value == "down" else status.state.value


def _take_down(name: str) -> str | None:
    """A live tunnel of a removed connection would keep its port and SSH session:
    the agent takes it down first. Returns the state it was in, or None."""
    try:
        from tunnel_tui.agent.client import AgentClient, AgentNotRunning
    except ImportError:  # a build without the agent
        return None
    client = AgentClient()
    try:
        (status,) = client.status(name)
        if status.state.value == "down":
            return None
        client.down(name)
    except (AgentNotRunning, NotFoundError):
        return None
    return status.state.value


_REMOVE_HELP = """Remove a connection and its keyring entries (a key shared with other
connections is kept).

When its key goes away, its line should leave the bastion's authorized_keys too:
with --yes (or after you confirm on a terminal) tunnel-tui logs in with the key one
last time and removes exactly that line (other lines untouched). If that fails the
local removal still happens and the line to delete by hand is printed. --keep-remote
leaves the bastion alone.

\b
  tunnel-tui remove staging --yes

A tunnel of the connection that is up in the agent is taken down first.

--json prints {name, deleted_keys [ids], kept_keys {id: [users]},
db_password_deleted, remote [{key, server, removed, error}], tunnel_was
(its state before, or null), warnings}.
"""


@click.command(help=_REMOVE_HELP)
@click.argument("name", shell_complete=connection_names)
@click.option("--yes", is_flag=True, help="Do not ask; also remove the key's bastion line.")
@click.option(
    "--keep-remote", is_flag=True, help="Leave the key's line in the bastion's authorized_keys."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def remove(name: str, yes: bool, keep_remote: bool, as_json: bool) -> None:
    from tunnel_tui.commands import bastion_cleanup

    catalog = open_catalog()
    conn = catalog.get(name)
    going = bastion_cleanup.lines_going_away(catalog, conn)
    servers = list({s.display: s for _, each in going for s in each}.values())
    ask = not yes and sys.stdin.isatty() and not os.environ.get("CI")
    if ask:
        click.confirm(f"Remove {name} ({_describe(conn)})?", abort=True, err=True)
    clean_remote = bool(servers) and not keep_remote and yes
    if servers and not keep_remote and ask:
        clean_remote = click.confirm(
            f"Also remove its key's line from {bastion_cleanup.describe(servers)}?",
            default=True,
            err=True,
        )
    took_down = _take_down(name)
    outcomes: list[bastion_cleanup.Outcome] = []
    if clean_remote:
        outcomes = bastion_cleanup.remove_lines(bastion_cleanup.plan(catalog, conn))
    result = catalog.remove(name)
    warnings = list(result.warnings)
    for outcome in outcomes:
        if outcome.error:
            warnings.append(
                f"could not remove the line of key {outcome.key.name} from "
                f"{outcome.server.file}: {outcome.error}"
            )
    for line in warnings:
        warn(f"warning: {line}")
    if as_json:
        print_json(
            {
                "name": name,
                "deleted_keys": [k.id for k in result.deleted_keys],
                "kept_keys": result.kept_keys,
                "db_password_deleted": result.db_password_deleted,
                "remote": [o.to_json() for o in outcomes],
                "tunnel_was": took_down,
                "warnings": warnings,
            }
        )
        return
    if took_down:
        click.echo(f"Took the {name} tunnel down (it was {took_down}).")
    click.echo(f"Removed {name}.")
    done = {(o.key.id, o.server.display): o for o in outcomes}
    for key in result.deleted_keys:
        click.echo(f"Deleted key {key.name} ({key.id}) from the keyring.")
        for server in dict(going).get(key, []):
            found = done.get((key.id, server.display))
            if found is not None and found.error is None:
                if found.removed:
                    click.echo(f"Removed its line from {server.file}.")
                else:
                    click.echo(f"Its line was not in {server.file} (nothing to remove).")
                continue
            click.echo(f"Its line may remain in {server.file}; delete the line holding:")
            click.echo(f"  {key.public_key}")
    for kid, users in result.kept_keys.items():
        click.echo(f"Kept key {kid}: still used by {', '.join(users)}.")
