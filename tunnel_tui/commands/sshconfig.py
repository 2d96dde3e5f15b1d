"""`import-ssh-config [HOST...]`: the hosts of ~/.ssh/config as bastion URLs.

Prints, per host, the `ssh://user@host:port` URL, its ProxyJump chain as `--jump`
URLs and its identity files, plus a ready-to-edit `tunnel-tui add` line. Nothing
is written: paste the line, fill in the database URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(name="import-ssh-config")
@click.argument("hosts", nargs=-1)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The ssh config to read (default ~/.ssh/config).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per host: alias, ssh, jumps, identity_files, "
                   "missing_identity_files.")
def import_ssh_config(hosts: tuple[str, ...], config_path: Path | None, as_json: bool) -> None:
    """Show hosts from ~/.ssh/config as bastions for `tunnel-tui add`.

    HostName, User, Port, IdentityFile and ProxyJump are read with asyncssh's
    parser (Include, Match and `Host *` defaults apply). Missing identity files
    are listed, never fatal. `Match exec` commands are never run: such a Match
    block counts as not matching, and the output says so.
    """
    from tunnel_tui.actions.sshconfig import import_ssh_config as read_hosts

    found = read_hosts(hosts, config_path)
    if as_json:
        for each in found:
            click.echo(json.dumps(each.to_json()))
        return
    if not found:
        click.echo("no hosts found", err=True)
        return
    for each in found:
        imported = each.host
        click.echo(f"{imported.alias}: {imported.ssh_url}")
        for url in imported.jump_urls:
            click.echo(f"  via {url}")
        for path in imported.identity_files:
            click.echo(f"  identity {path}")
        for path in imported.missing_identity_files:
            click.echo(f"  identity {path} (missing, skipped)")
        for skipped in imported.skipped_exec:
            click.echo(f"  skipped: {skipped.describe()}")
        click.echo("  " + each.add_command)
