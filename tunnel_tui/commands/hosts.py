"""`hosts list|forget`: the SSH host keys tunnel-tui trusts (its own known_hosts).

Entries are hashed, so names cannot be shown; each entry is matched against the
configured bastions and jump hosts to say which of them it belongs to.
"""

from __future__ import annotations

import click

from tunnel_tui.actions import hosts as actions
from tunnel_tui.commands.completion import host_names
from tunnel_tui.commands.output import print_json, table, warn
from tunnel_tui.commands.prompts import cli_session
from tunnel_tui.core.known_hosts import host_name

HOSTS_JSON_HELP = """\b
JSON (--json): an array, one object per trusted key:
  hosts (the configured "host:port" it matches, "(hashed)" if none, or the
  plain pattern), hashed, key_type, fingerprint "SHA256:...", marker (null,
  "@revoked" or "@cert-authority"), labels ["host:port", ...], connections
  [names using that host], source (file), line."""


@click.group()
def hosts() -> None:
    """Trusted SSH host keys: list, forget."""


@hosts.command(name="list", epilog=HOSTS_JSON_HELP)
@click.option("--json", "as_json", is_flag=True, help="JSON array on stdout.")
@click.option(
    "--all", "include_user", is_flag=True, help="Also list ~/.ssh/known_hosts (read-only)."
)
def list_hosts(as_json: bool, include_user: bool) -> None:
    """List trusted host keys with their SHA256 fingerprints and the connections that
    use each host."""
    listing = actions.list_hosts(cli_session(), include_user=include_user)
    if as_json:
        print_json([h.to_json() for h in listing.hosts])
        return
    if not listing.hosts:
        click.echo(f"no trusted host keys yet ({listing.path})")
        return
    rows = [
        (
            h.entry.shown_hosts,
            h.entry.key_type,
            h.entry.fingerprint,
            ", ".join(h.connections),
            h.entry.marker or ("" if h.ours else "~/.ssh"),
        )
        for h in listing.hosts
    ]
    click.echo(table(("HOST", "TYPE", "FINGERPRINT", "CONNECTIONS", "NOTE"), rows))


@hosts.command(name="forget")
@click.argument("target", metavar="HOST[:PORT]", shell_complete=host_names)
@click.option("--json", "as_json", is_flag=True, help="JSON object on stdout.")
def forget(target: str, as_json: bool) -> None:
    """Forget the trusted host key(s) of HOST[:PORT] (port 22 by default), e.g. after a
    planned host key change. The next connection asks for consent again."""
    result = actions.forget(cli_session(), target)
    host, port = result.host, result.port
    if as_json:
        print_json(result.to_json())
    elif result.removed:
        n = result.removed
        click.echo(f"forgot {n} host key{'s' if n > 1 else ''} of {host}:{port}")
    else:
        click.echo(f"nothing to forget: no trusted key for {host}:{port} in {result.path}")
    if result.in_user_known_hosts:
        warn(
            f"note: your ~/.ssh/known_hosts also trusts {host}:{port}; tunnel-tui never edits "
            f"it (remove it yourself with: ssh-keygen -R '{host_name(host, port)}')"
        )
