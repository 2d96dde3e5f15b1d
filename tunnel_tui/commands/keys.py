"""`key show|list|generate|import|delete`: SSH keys. Private halves live in the keyring;
only public lines are ever printed."""

from __future__ import annotations

import click

from tunnel_tui.commands.completion import connection_names, key_names
from tunnel_tui.commands.connections import StdinLines, open_catalog, read_identity
from tunnel_tui.commands.output import KEY_JSON_HELP, key_json, print_json, table
from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.errors import NotFoundError, UsageError
from tunnel_tui.core.model import Key


@click.group()
def key() -> None:
    """SSH keys: show, list, generate, import, delete."""


def _authorized_line(catalog: Catalog, k: Key, restricted: bool) -> str:
    from tunnel_tui.actions.bastion_setup import authorized_line

    return authorized_line(catalog, k, restricted)


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
    catalog = Catalog()
    if key_name is not None:
        if name is not None:
            raise UsageError("give a connection NAME or --key KEY, not both", field="key")
        k = catalog.key(key_name)
    elif name is None:
        raise UsageError("which key? give a connection NAME or --key KEY", field="name")
    else:
        cfg = catalog.load()
        if name in cfg.connections:
            k = cfg.keys[cfg.connections[name].key_id]
        else:
            try:
                k = catalog.key(name)
            except NotFoundError:
                raise NotFoundError(
                    f"no connection or key named {name!r}",
                    field="name",
                    hint="see tunnel-tui list and tunnel-tui key list",
                ) from None
    click.echo(_authorized_line(catalog, k, restricted))


@key.command(name="list", help="List keys and the connections using them.\n\n" + KEY_JSON_HELP)
@click.option("--json", "as_json", is_flag=True, help="An array of key objects.")
def list_keys(as_json: bool) -> None:
    catalog = Catalog()
    cfg = catalog.load()
    keys = sorted(cfg.keys.values(), key=lambda k: (k.name, k.id))
    if as_json:
        print_json([key_json(k, cfg.users_of(k.id)) for k in keys])
        return
    if not keys:
        click.echo("No keys yet. `tunnel-tui add` generates one, or: tunnel-tui key generate NAME")
        return
    rows = [
        (k.name, k.id, k.type.value, k.source.value, k.fingerprint,
         ", ".join(cfg.users_of(k.id)) or "(unused)")
        for k in keys
    ]
    click.echo(table(("NAME", "ID", "TYPE", "SOURCE", "FINGERPRINT", "USED BY"), rows))


def _print_new(k: Key, as_json: bool) -> None:
    from tunnel_tui.core.keys import authorized_keys_line

    if as_json:
        out = key_json(k, [])
        out["authorized_keys_line"] = authorized_keys_line(k.public_key, k.comment)
        print_json(out)
        return
    click.echo(f"Stored key {k.name} ({k.id}, {k.type.value}, {k.fingerprint}) in the keyring.")
    click.echo(authorized_keys_line(k.public_key, k.comment))


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
    _print_new(open_catalog().generate_key(name, key_type), as_json)


@key.command(name="import")
@click.argument("name")
@click.argument("file")
@click.option("--passphrase-stdin", is_flag=True, help="Read the passphrase from stdin.")
@click.option("--json", "as_json", is_flag=True, help="The key object plus authorized_keys_line.")
def import_(name: str, file: str, passphrase_stdin: bool, as_json: bool) -> None:
    """Import the private key FILE as NAME (copied into the keyring, decrypted)."""
    catalog = open_catalog()
    catalog.key_name_free(name)
    choice = read_identity(file, StdinLines(), passphrase_stdin)
    _print_new(catalog.import_key(name, choice.data, choice.passphrase), as_json)


@key.command(name="delete")
@click.argument("key_id_or_name", metavar="KEY", shell_complete=key_names)
def delete(key_id_or_name: str) -> None:
    """Delete KEY (id or name) and its private half; refused while a connection uses it."""
    k = open_catalog().delete_key(key_id_or_name)
    click.echo(f"Deleted key {k.name} ({k.id}).")
