"""`tunnel-tui bastion-setup NAME`: the shell the bastion admin runs for NAME's key
(actions/bastion_setup.py writes it)."""

from __future__ import annotations

import click

from tunnel_tui.commands.completion import connection_names


@click.command("bastion-setup")
@click.argument("name", shell_complete=connection_names)
def bastion_setup(name: str) -> None:
    """Print what the bastion admin runs (as root) for the key of connection NAME:
    a dedicated user with no password and no shell, the restricted authorized_keys
    line (as `key show --restricted` prints it: tunnels to the databases only) and
    the sshd_config lines to check. One section per SSH server the key logs in to,
    for every connection that uses the key.

    \b
      tunnel-tui bastion-setup prod > setup-bastion.sh   # send it to the admin
    """
    from tunnel_tui.actions.bastion_setup import script
    from tunnel_tui.core.catalog import Catalog

    click.echo(script(Catalog(), name), nl=False)
