"""`hosts list|forget`: the SSH host keys tunnel-tui trusts (its own known_hosts).

Entries are hashed, so names cannot be shown; each entry is matched against the
configured bastions and jump hosts to say which of them it belongs to.
"""

from __future__ import annotations

import click

from tunnel_tui.commands.completion import host_names
from tunnel_tui.commands.output import print_json, table, warn
from tunnel_tui.core.known_hosts import KnownHostEntry, KnownHosts, host_name, parse_host_port

HOSTS_JSON_HELP = """\b
JSON (--json): an array, one object per trusted key:
  hosts (the configured "host:port" it matches, "(hashed)" if none, or the
  plain pattern), hashed, key_type, fingerprint "SHA256:...", marker (null,
  "@revoked" or "@cert-authority"), labels ["host:port", ...], connections
  [names using that host], source (file), line."""


def _configured_hops() -> dict[tuple[str, int], list[str]]:
    """(host, port) of every bastion and jump host -> connection names."""
    from tunnel_tui.core import config

    hops: dict[tuple[str, int], list[str]] = {}
    for name, conn in sorted(config.load().connections.items()):
        for hop in conn.hops:
            users = hops.setdefault((hop.host, hop.port), [])
            if name not in users:
                users.append(name)
    return hops


def _connections_of(entry: KnownHostEntry, hops: dict[tuple[str, int], list[str]]) -> list[str]:
    names: list[str] = []
    for (host, port), users in hops.items():
        if f"{host}:{port}" in entry.labels:
            names += [n for n in users if n not in names]
    return names


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
    known = KnownHosts()
    hops = _configured_hops()
    entries = known.entries(hops, include_user=include_user)
    if as_json:
        print_json([{**e.to_json(), "connections": _connections_of(e, hops)} for e in entries])
        return
    if not entries:
        click.echo(f"no trusted host keys yet ({known.path})")
        return
    rows = [
        (
            e.shown_hosts,
            e.key_type,
            e.fingerprint,
            ", ".join(_connections_of(e, hops)),
            e.marker or ("" if e.source == known.path else "~/.ssh"),
        )
        for e in entries
    ]
    click.echo(table(("HOST", "TYPE", "FINGERPRINT", "CONNECTIONS", "NOTE"), rows))


@hosts.command(name="forget")
@click.argument("target", metavar="HOST[:PORT]", shell_complete=host_names)
@click.option("--json", "as_json", is_flag=True, help="JSON object on stdout.")
def forget(target: str, as_json: bool) -> None:
    """Forget the trusted host key(s) of HOST[:PORT] (port 22 by default), e.g. after a
    planned host key change. The next connection asks for consent again."""
    host, port = parse_host_port(target)
    known = KnownHosts()
    removed = known.forget(host, port)
    in_user = known.in_user_known_hosts(host, port)
    if as_json:
        print_json({"host": host, "port": port, "removed": removed, "in_user_known_hosts": in_user})
    elif removed:
        click.echo(f"forgot {removed} host key{'s' if removed > 1 else ''} of {host}:{port}")
    else:
        click.echo(f"nothing to forget: no trusted key for {host}:{port} in {known.path}")
    if in_user:
        warn(
            f"note: your ~/.ssh/known_hosts also trusts {host}:{port}; tunnel-tui never edits "
            f"it (remove it yourself with: ssh-keygen -R '{host_name(host, port)}')"
        )
