"""`add`, `edit`, `list`, `show`, `remove`: connections (a database behind a bastion).

Thin click wrappers around `tunnel_tui.actions.connections`: parse the flags, call the
action, print its result. Bad input is one line on stderr and exit 2, with nothing
changed on disk: the catalog checks everything before it writes. Secrets come from
stdin or a hidden prompt, never from argv or the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from tunnel_tui.actions import connections as actions
from tunnel_tui.actions.connections import (
    ConnectionChanges,
    ConnectionInput,
    KeyInput,
    KeySource,
    SaveResult,
)
from tunnel_tui.actions.session import Session
from tunnel_tui.commands.completion import connection_names, key_names
from tunnel_tui.commands.output import (
    CONNECTION_JSON_HELP,
    connection_json,
    print_json,
    table,
    warn,
)
from tunnel_tui.commands.prompts import StdinLines, cli_session, identity_key
from tunnel_tui.core.errors import TunnelTuiError, UsageError
from tunnel_tui.core.model import UNSET, Connection, Database, Key, SshEndpoint
from tunnel_tui.core.urls import (
    format_db_url,
    parse_db_url,
    parse_port,
    parse_ssh_url,
    validate_name,
)

# --- the key options (shared by add, edit and key import) -----------------------------


def key_input(
    generate_key: bool,
    key_type: str | None,
    identity: str | None,
    use_key: str | None,
    key_name: str | None,
    passphrase_stdin: bool,
    stdin: StdinLines,
    *,
    ssh_agent: bool = False,
    key_fingerprint: str | None = None,
    session: Session | None = None,
) -> KeyInput | None:
    """The key flags -> what the user chose (None: nothing said). `--ssh-agent` asks
    the caller's agent which key (several and no --key-fingerprint: exit 2, listed)."""
    chosen = [
        flag
        for flag, on in (
            ("--generate-key", generate_key or key_type is not None),
            ("--identity", identity is not None),
            ("--use-key", use_key is not None),
            ("--ssh-agent", ssh_agent),
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
    if key_fingerprint is not None and not ssh_agent:
        raise UsageError("--key-fingerprint goes with --ssh-agent", field="key_fingerprint")
    if ssh_agent:
        from tunnel_tui.actions.ssh_agent import choose_agent_key

        choice = choose_agent_key(session or cli_session(), key_fingerprint)
        return KeyInput(KeySource.AGENT, agent_public_line=choice.public_line, name=key_name)
    if identity is not None:
        return identity_key(identity, stdin, passphrase_stdin, key_name)
    if use_key is not None:
        return KeyInput(KeySource.REUSE, reuse=use_key)
    if chosen or key_name is not None:
        return KeyInput(KeySource.GENERATE, key_type=key_type or "ed25519", name=key_name)
    return None


def read_certificate(path: str | None, key: KeyInput | None, *, adding: bool) -> str | None:
    """--certificate FILE's text (checked against the key by the catalog); a key
    generated now cannot have one yet."""
    if path is None:
        return None
    generating = key.source is KeySource.GENERATE if key is not None else adding
    if generating:
        raise UsageError(
            "a key generated now has no certificate yet", field="certificate",
            hint="have your CA sign its public key, then: tunnel-tui edit NAME --certificate FILE",
        )
    try:
        with open(os.path.expanduser(path), encoding="ascii", errors="replace") as f:
            return f.read(64 * 1024)
    except OSError as exc:
        raise UsageError(
            f"cannot read the certificate {path!r}: {exc.strerror}", field="certificate"
        ) from None


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
        click.option(
            "--ssh-agent", is_flag=True,
            help="Use a key from your ssh-agent ($SSH_AUTH_SOCK; FIDO sk- keys and "
            "certificates too): nothing is copied, only its public key is stored.",
        ),
        click.option(
            "--key-fingerprint", metavar="SHA256:…",
            help="With --ssh-agent: which of the agent's keys (see ssh-add -l).",
        ),
        click.option(
            "--certificate", metavar="FILE",
            help="An OpenSSH user certificate for the key (KEY-cert.pub, public).",
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


def _public_line(key: Key) -> str:
    from tunnel_tui.core.keys import authorized_keys_line

    return authorized_keys_line(key.public_key, key.comment)


def _print_key_to_install(result: SaveResult, *, waiting: bool = False) -> None:
    conn = result.connection
    click.echo(_public_line(result.key))
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


def _result_json(result: SaveResult) -> dict[str, Any]:
    out = connection_json(result.connection, result.key)
    out["key_generated"] = result.generated
    out["key_created"] = result.new_key
    out["authorized_keys_line"] = _public_line(result.key)
    return out


def _key_summary(result: SaveResult) -> None:
    key = result.key
    how = "new key" if result.generated else "imported key" if result.new_key else "key"
    if key.in_agent:
        how = "the ssh-agent's key"
    click.echo(f"Uses {how} {key.name} ({key.id}, {key.type.value}, {key.fingerprint})")
    cert = _certificate_text(key)
    if cert:
        click.echo(f"With its {cert}")


def _certificate_text(key: Key | None) -> str:
    """"certificate for tunnel, valid … (expires in 3 h)", or "" without one."""
    from tunnel_tui.core.certificates import stored_certificate

    cert = stored_certificate(key) if key is not None else None
    return cert.summary() if cert is not None else ""


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
    ssh_agent: bool,
    key_fingerprint: str | None,
    certificate: str | None,
    as_json: bool,
) -> None:
    from tunnel_tui.core.known_hosts import parse_fingerprints

    accept = parse_fingerprints(accept_host_keys)  # malformed: exit 2 before anything
    if wait_minutes is not None:
        from tunnel_tui.actions.waiting import check_minutes

        check_minutes(wait_minutes)  # 1-60, else exit 2 before anything
    stdin = StdinLines()
    parsed_port = parse_local_port(local_port)
    session = cli_session()
    spec = ConnectionInput(
        name,
        *_parse_urls(name, db_url, ssh_url),
        jumps=tuple(parse_ssh_url(j, field="jump") for j in jumps),
        local_port=None if parsed_port is UNSET else parsed_port,
        autostart=autostart,
    )
    # Cheap checks first, so a taken name is reported before a passphrase is asked.
    actions.check_new(session, spec)
    key = key_input(generate_key, key_type, identity, use_key, key_name, passphrase_stdin, stdin,
                    ssh_agent=ssh_agent, key_fingerprint=key_fingerprint, session=session)
    cert = read_certificate(certificate, key, adding=True)
    password = stdin.read("database password", "--db-password-stdin") if db_password_stdin else None
    result = actions.add(session, replace(spec, key=key, password=password, certificate=cert))
    met = _meet_host_keys(session, name, accept, accept_new_host_key)
    refused = met is not None and any(hop.refused for hop in met)
    waited = None
    if wait_minutes is not None and not refused:
        from tunnel_tui.commands.agentctl import start_wait

        if not as_json:
            _added(name, result, met, waiting=True)
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
        _added(name, result, met)
    if refused:
        sys.exit(1)  # the connection is added; its host key is not trusted


def _added(
    name: str, result: SaveResult, met: list[Any] | None, *, waiting: bool = False
) -> None:
    click.echo(f"Added {name}: {_describe(result.connection)}")
    _key_summary(result)
    for hop in met or ():
        click.echo(f"Host key of {hop.describe()}")
    if result.generated or result.new_key:
        _print_key_to_install(result, waiting=waiting)


def _meet_host_keys(
    session: Session, name: str, accept: frozenset[str], accept_new: bool
) -> list[Any] | None:
    """`add --accept-host-key/--accept-new-host-key`: trust the hops' keys now."""
    if not accept and not accept_new:
        return None
    from tunnel_tui.actions import host_keys
    from tunnel_tui.actions.runner import run

    return run(host_keys.meet(session, name, accept_host_keys=accept, accept_new=accept_new))


def _parse_urls(name: str, db_url: str, ssh_url: str) -> tuple[Database, SshEndpoint]:
    """The name is checked first, then the URLs, as `add` reports them (one error)."""
    validate_name(name)
    return parse_db_url(db_url), parse_ssh_url(ssh_url)


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
    ssh_agent: bool,
    key_fingerprint: str | None,
    certificate: str | None,
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
    session = cli_session()
    changes = ConnectionChanges(
        database=parse_db_url(db_url) if db_url is not None else None,
        bastion=parse_ssh_url(ssh_url) if ssh_url is not None else None,
        jumps=() if no_jumps else (tuple(parse_ssh_url(j, field="jump") for j in jumps) or None),
        local_port=port,
        clear_password=clear_db_password,
        rename=rename,
        autostart=autostart,
    )
    actions.check_edit(session, name, changes)
    key = key_input(generate_key, key_type, identity, use_key, key_name, passphrase_stdin, stdin,
                    ssh_agent=ssh_agent, key_fingerprint=key_fingerprint, session=session)
    cert = read_certificate(certificate, key, adding=False)
    password = stdin.read("database password", "--db-password-stdin") if db_password_stdin else None
    result = actions.edit(session, name,
                          replace(changes, key=key, password=password, certificate=cert))
    if as_json:
        print_json(_result_json(result))
        return
    renamed = f" (now {result.connection.name})" if result.renamed_from else ""
    click.echo(f"Changed {name}{renamed}: {_describe(result.connection)}")
    live = result.live_state
    if live:
        warn(
            f"note: {name} is {live} with the old settings; they apply after: "
            f"tunnel-tui down {name} && tunnel-tui up {name}"
        )
    if key is not None or certificate is not None:
        _key_summary(result)
        if result.generated or result.new_key:
            _print_key_to_install(result)
        if result.unused_key is not None:
            old = result.unused_key
            click.echo(
                f"Key {old.name} is no longer used; once its line is off the bastion: "
                f"tunnel-tui key delete {old.name} (rotate-key does all this without downtime)"
            )


@click.command(name="list", help="List connections.\n\n" + CONNECTION_JSON_HELP)
@click.option("--json", "as_json", is_flag=True, help="An array of connection objects.")
def list_(as_json: bool) -> None:
    listing = actions.list_connections(cli_session())
    conns = listing.connections
    if as_json:
        print_json([connection_json(c, listing.key_of(c)) for c in conns])
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
            _key_label(listing.key_of(c), c.key_id),
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
    detail = actions.show(cli_session(), name)
    conn, key = detail.connection, detail.key
    if as_json:
        print_json(connection_json(conn, key))
        return
    ka = conn.keepalive
    local = (
        f"{conn.local_host}:{conn.local_port}"
        if conn.local_port is not None
        else f"{conn.local_host} (port picked on first up, then kept)"
    )
    shared = [u for u in detail.key_users if u != name]
    key_text = _key_label(key, conn.key_id)
    if key:
        key_text += f" ({key.id}, {key.type.value}, {key.fingerprint})"
    if shared:
        key_text += f", shared with {', '.join(shared)}"
    if key is not None and key.in_agent:
        key_text += "; lives in your ssh-agent (public half stored)"
    rows: list[tuple[str, str]] = [
        ("database", format_db_url(conn.database)),
        ("target", f"{conn.database.target} (as the bastion sees it)"),
        ("bastion", conn.bastion.display),
    ]
    if conn.jumps:
        rows.append(("jumps", " -> ".join(j.display for j in conn.jumps)))
    rows.append(("key", key_text))
    if _certificate_text(key):
        rows.append(("certificate", _certificate_text(key)))
    rows += [
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
    session = cli_session()
    plan = actions.plan_remove(session, name)
    ask = not yes and sys.stdin.isatty() and not os.environ.get("CI")
    if ask and not click.confirm(
        f"Remove {name} ({_describe(plan.connection)})?", default=False, err=True
    ):
        raise NothingRemoved(name)
    clean_remote = bool(plan.servers) and not keep_remote and yes
    if plan.servers and not keep_remote and ask:
        clean_remote = click.confirm(
            f"Also remove its key's line from {plan.where}?", default=True, err=True
        )
    outcome = actions.remove(session, name, clean_bastion=clean_remote)
    for line in outcome.warnings:
        warn(f"warning: {line}")
    if as_json:
        print_json(outcome.to_json())
        return
    if outcome.tunnel_was:
        click.echo(f"Took the {name} tunnel down (it was {outcome.tunnel_was}).")
    click.echo(f"Removed {name}.")
    going = dict(plan.lines)
    for key in outcome.result.deleted_keys:
        # Where it lived: the keyring, the vault, or the user's ssh-agent (not ours).
        click.echo(f"Forgot key {key.name} ({key.id}); it stays in your ssh-agent."
                   if key.in_agent else f"Deleted key {key.name} ({key.id}).")
        for server in going.get(key, []):
            found = outcome.remote_outcome(key, server)
            if found is not None and found.error is None:
                if found.removed:
                    click.echo(f"Removed its line from {server.file}.")
                else:
                    click.echo(f"Its line was not in {server.file} (nothing to remove).")
                continue
            click.echo(f"Its line may remain in {server.file}; delete the line holding:")
            click.echo(f"  {key.public_key}")
    for kid, users in outcome.result.kept_keys.items():
        click.echo(f"Kept key {kid}: still used by {', '.join(users)}.")


class NothingRemoved(TunnelTuiError):
    """The user answered no: exit 1, nothing changed (not click's 130 "Aborted!")."""

    def __init__(self, name: str) -> None:
        super().__init__(f"nothing removed: {name} stays as it was")
