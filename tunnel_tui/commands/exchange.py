"""`tunnel-tui export` and `tunnel-tui import`: connection definitions for a team, as
TOML with no secrets (actions/exchange.py does the work)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tunnel_tui.commands.completion import connection_names, key_names
from tunnel_tui.commands.output import connection_json, print_json


@click.command("export")
@click.argument("names", nargs=-1, shell_complete=connection_names)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE (0600, atomically) instead of stdout.")
def export(names: tuple[str, ...], output: Path | None) -> None:
    """Print connections NAMES (default: all) as TOML for `tunnel-tui import`.

    Database, bastion, jumps, local port, autostart and the key's NAME: no
    password, no private key, no secret. Colleagues import it and install
    their own keys (`tunnel-tui bastion-setup NAME` tells the bastion admin how).
    """
    from tunnel_tui.actions.exchange import export_text
    from tunnel_tui.actions.session import Session

    text = export_text(Session(), names)
    if output is None:
        click.echo(text, nl=False)
        return
    from tunnel_tui.core.atomic import write_private_file

    write_private_file(output.absolute(), text.encode())
    click.echo(f"wrote {len(text.splitlines())} lines to {output}", err=True)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--use-key", metavar="KEY", shell_complete=key_names,
              help="Use this stored key for every connection (default: one new key per "
                   "key name in FILE; connections sharing a name share the key).")
@click.option("--json", "as_json", is_flag=True, help="Print the added connections as JSON.")
def import_(file: Path, use_key: str | None, as_json: bool) -> None:
    """Add the connections in FILE (from `tunnel-tui export`), all or nothing.

    A name that exists already is refused (exit 2, nothing written); a local
    port already in use gets a free one, and this says which.
    """
    from tunnel_tui.actions.exchange import import_text
    from tunnel_tui.commands.prompts import cli_session
    from tunnel_tui.core.errors import UsageError

    try:
        if str(file) == "-":
            text = sys.stdin.read()
        else:
            text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}",
                         hint="give the file tunnel-tui export wrote", field="file") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {file}: it is not UTF-8 text",
                         hint="give the file tunnel-tui export wrote", field="file") from None
    result = import_text(cli_session(), text, source=str(file), use_key=use_key)
    if as_json:
        print_json({
            "added": [connection_json(r.connection, r.key) for r in result.added],
            "new_keys": result.new_keys,
            "port_moves": [vars(m) for m in result.port_moves],
        })
        return
    names = [r.connection.name for r in result.added]
    click.echo(f"imported {len(names)} connection(s): {', '.join(names) or '-'}")
    for move in result.port_moves:
        click.echo(f"{move.name}: local port {move.wanted} is {move.taken_by}'s; "
                   f"{move.name} uses {move.got}")
    for key_name, users in result.new_keys.items():
        click.echo(f"new key {key_name!r} for {', '.join(users)}: its public key goes on the "
                   f"bastion: tunnel-tui bastion-setup {users[0]}")
