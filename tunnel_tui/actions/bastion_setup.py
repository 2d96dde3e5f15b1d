"""`bastion-setup NAME`: what the bastion admin runs, as copy-pasteable shell.

For the key of connection NAME and every SSH server that key logs in to (the bastion,
or a jump host), one section: a dedicated user with no password and no shell, the
restricted authorized_keys line (exactly what `key show --restricted` prints) and the
sshd_config lines to check (AllowTcpForwarding, PermitOpen, AllowUsers), after the
seed's bastion checklist (inbound SSH, outbound to the database, a dedicated user with
a dedicated key pair). The CLI prints it; the TUI's public-key screen shows it too.

Why a nologin shell works: sshd serves a port forward (a direct-tcpip channel) itself
and runs the user's shell only for a session (a shell, a command, SFTP), which the
restricted line refuses anyway (its forced command is /bin/false). sshd does require
the shell to exist and be executable, which /usr/sbin/nologin is. The password is set
to '*' rather than left '!': with UsePAM no, sshd treats a '!' password as a locked
account and refuses even a key (OpenSSH 9.2, tests/cli/test_bastion_setup.py).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.model import Key

__all__ = ["Hop", "authorized_line", "hops_of", "script", "script_for_key"]

NOLOGIN = "/usr/sbin/nologin"


def authorized_line(catalog: Catalog, key: Key, restricted: bool) -> str:
    """The authorized_keys line of KEY (`key show`); restricted: tunnels only, to the
    targets of every connection that uses it (`key show --restricted`)."""
    from tunnel_tui.core.keys import authorized_keys_line

    targets = catalog.restrict_targets(key.id) if restricted else None
    if restricted and not targets:
        raise UsageError(
            f"key {key.name!r} is not used by any connection, so there is nothing to permit",
            field="key",
            hint="drop --restricted, or use the key for a connection first",
        )
    return authorized_keys_line(key.public_key, key.line_comment, targets)


@dataclass(frozen=True)
class Hop:
    """One SSH server the key logs in to, with what it must let the key reach."""

    host: str
    port: int
    user: str
    targets: list[str]  # "host:port" the key forwards to from here
    connections: list[str]


def hops_of(catalog: Catalog, key: Key) -> list[Hop]:
    cfg = catalog.load()
    found: dict[tuple[str, int, str], Hop] = {}
    for name, conn in sorted(cfg.connections.items()):
        hops = conn.hops
        for i, hop in enumerate(hops):
            if (hop.key_id or conn.key_id) != key.id:
                continue
            nxt = hops[i + 1] if i + 1 < len(hops) else None
            target = f"{nxt.host}:{nxt.port}" if nxt else conn.database.target
            entry = found.setdefault(
                (hop.host, hop.port, hop.user), Hop(hop.host, hop.port, hop.user, [], [])
            )
            if target not in entry.targets:
                entry.targets.append(target)
            if name not in entry.connections:
                entry.connections.append(name)
    return list(found.values())


def script(catalog: Catalog, name: str) -> str:
    """The setup script for the key of connection NAME (NotFoundError for an unknown
    NAME). Idempotent: running it twice changes nothing more."""
    return script_for_key(catalog, catalog.key_of(name))


def script_for_key(catalog: Catalog, key: Key) -> str:
    """The setup script for KEY (UsageError when no connection uses it)."""
    line = authorized_line(catalog, key, restricted=True)
    hops = hops_of(catalog, key)
    out = [
        "#!/bin/sh",
        f"# tunnel-tui: bastion setup for the key {key.name!r} ({key.type.value} "
        f"{key.fingerprint}),",
        f"# used by: {', '.join(sorted({c for h in hops for c in h.connections}))}.",
        "# Run each section as root on the host it names. Safe to run twice.",
        "set -eu",
    ]
    for hop in hops:
        out += _section(hop, line)
    return "\n".join(out) + "\n"


def _section(hop: Hop, line: str) -> list[str]:
    user = shlex.quote(hop.user)
    home = f'"$(getent passwd {user} | cut -d: -f6)"'
    keys_file = '"$home/.ssh/authorized_keys"'
    targets = ", ".join(hop.targets)
    return [
        "",
        f"# === on {hop.host} (SSH port {hop.port}), user {hop.user} "
        f"-- for {', '.join(hop.connections)}",
        "# Network: inbound SSH to port "
        f"{hop.port} from your users; outbound from here to {targets}.",
        "# The database user behind it: give it the least privileges (read-only if it",
        "# only queries).",
        "",
        "# 1. A dedicated user for the tunnels: no password (key login only) and no shell.",
        "#    sshd forwards ports without running the user's shell, so nologin is enough;",
        "#    '*' (not '!') as password: with UsePAM no, sshd takes '!' as locked.",
        f"id {user} >/dev/null 2>&1 || useradd --create-home --shell {NOLOGIN} {user}",
        f"usermod --password '*' {user}",
        f"home={home}",
        "",
        "# 2. Its key, restricted: port forwarding to the database(s) only; no shell,",
        "#    no command, no SFTP, no agent or X11 forwarding, no pty.",
        f"line={shlex.quote(line)}",
        f'install -d -m 700 -o {user} -g "$(id -g {user})" "$home/.ssh"',
        f"touch {keys_file}",
        f"grep -qxF \"$line\" {keys_file} || printf '%s\\n' \"$line\" >> {keys_file}",
        f'chown {user}: {keys_file} && chmod 600 {keys_file}',
        "",
        "# 3. sshd_config: check what sshd really uses for this user (sshd -T below):",
        "#      AllowTcpForwarding  yes or local (no, remote or all-off breaks the tunnel)",
        f"#      PermitOpen          any, or a list that has {targets}",
        f"#      AllowUsers          unset, or it lists {hop.user} (AllowGroups likewise;",
        f"#                          DenyUsers/DenyGroups must not match {hop.user})",
        "#    To allow just this user, e.g. at the end of /etc/ssh/sshd_config:",
        f"#      Match User {hop.user}",
        "#          AllowTcpForwarding local",
        f"#          PermitOpen {' '.join(hop.targets)}",
        "#          X11Forwarding no",
        "#          PermitTTY no",
        "#    then: sshd -t && systemctl reload ssh   (or sshd)",
        f"sshd -T -C user={user},host=localhost,addr=127.0.0.1 2>/dev/null \\",
        "    | grep -Ei '^(allowtcpforwarding|permitopen|allowusers|allowgroups|denyusers) ' "
        "|| true",
    ]
