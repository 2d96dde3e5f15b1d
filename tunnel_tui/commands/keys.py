"""`key show|list|generate|import|delete`: SSH keys. Private halves live in the keyring;
only public lines are ever printed."""

from __future__ import annotations

import click

from tunnel_tui.actions import keys as actions
from tunnel_tui.commands.completion import connection_names, key_names
from tunnel_tui.commands.output import KEY_JSON_HELP, key_json, print_json, table
from tunnel_tui.commands.prompts import StdinLines, cli_session, identity_key
from tunnel_tui.core.model import Key


@click.group()
def key() -> None:
    """SSH keys: show, list, generate, import, delete."""


@key.command(name="show")
@click.argument("name", required=False, shell_complete=connection_names)
@click.option(
    "--key", "key_name", metavar="KEY", help="A key (id or name) instead of a connection.",
    shell_complete=key_names,
)
@click.option(
    "--restricted",
    is_flag=True,
    help='Prefix restrict,port-forwarding,permitopen="host:port",... for every target '
    "that uses the key.",
)
def show_key(name: str | None, key_name: str | None, restricted: bool) -> None:
    """Print the public key of connection NAME as one authorized_keys line
    (comment tunnel-tui:<key name>). NAME may also be a key id or name."""
    session = cli_session()
    found = actions.find(session, name, key=key_name)
    click.echo(actions.authorized_line(session, found, restricted=restricted))


@key.command(
    name="list",
    help="List keys and the connections using them. SOURCE: where the private key lives "
    "for you (keyring, vault or ssh-agent).\n\n" + KEY_JSON_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="An array of key objects.")
def list_keys(as_json: bool) -> None:
    infos = actions.list_keys(cli_session())
    if as_json:
        print_json([key_json(i.key, i.used_by) for i in infos])
        return
    if not infos:
        click.echo("No keys yet. `tunnel-tui add` generates one, or: tunnel-tui key generate NAME")
        return
    store = actions.store_name() if any(not i.key.in_agent for i in infos) else ""
    rows = [
        (i.key.name, i.key.id, i.key.type.value, actions.lives_in(i.key, store),
         i.key.fingerprint, ", ".join(i.used_by) or "(unused)")
        for i in infos
    ]
    click.echo(table(("NAME", "ID", "TYPE", "SOURCE", "FINGERPRINT", "USED BY"), rows))


def _print_new(k: Key, as_json: bool) -> None:
    from tunnel_tui.core.keys import authorized_keys_line

    line = authorized_keys_line(k.public_key, k.comment)
    if as_json:
        out = key_json(k, [])
        out["authorized_keys_line"] = line
        print_json(out)
        return
    click.echo(f"Stored key {k.name} ({k.id}, {k.type.value}, {k.fingerprint}) in the "
               f"{actions.store_name()}.")
    click.echo(line)


@key.command(name="generate")
@click.argument("name")
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["ed25519", "rsa"]),
    default="ed25519",
    help="ed25519 (default) or rsa (4096 bits).",
)
@click.option("--json", "as_json", is_flag=True, help="The key object plus authorized_keys_line.")
def generate(name: str, key_type: str, as_json: bool) -> None:
    """Generate a key named NAME (use it with add/edit --use-key NAME)."""
    _print_new(actions.generate(cli_session(), name, key_type), as_json)


@key.command(name="import")
@click.argument("name")
@click.argument("file")
@click.option("--passphrase-stdin", is_flag=True, help="Read the passphrase from stdin.")
@click.option("--json", "as_json", is_flag=True, help="The key object plus authorized_keys_line.")
def import_(name: str, file: str, passphrase_stdin: bool, as_json: bool) -> None:
    """Import the private key FILE as NAME (copied into the keyring, decrypted)."""
    session = cli_session()
    actions.check_name(session, name)
    identity = identity_key(file, StdinLines(), passphrase_stdin)
    assert identity.data is not None
    _print_new(actions.import_key(session, name, identity.data, identity.passphrase), as_json)


@key.command(name="delete")
@click.argument("key_id_or_name", metavar="KEY", shell_complete=key_names)
def delete(key_id_or_name: str) -> None:
    """Delete KEY (id or name) and its private half; refused while a connection uses it."""
    k = actions.delete(cli_session(), key_id_or_name)
    click.echo(f"Deleted key {k.name} ({k.id}).")
