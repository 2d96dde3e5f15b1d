"""import-ssh-config: the hosts of ~/.ssh/config as bastions (nothing is written)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunnel_tui.engine.sshconfig import ImportedHost


@dataclass(frozen=True)
class SshConfigHost:
    host: ImportedHost

    @property
    def add_command(self) -> str:
        """A ready-to-edit `tunnel-tui add` line (DB_URL left for the user to fill)."""
        host = self.host
        args = ["tunnel-tui", "add", host.alias, "--db", "DB_URL", "--ssh", host.ssh_url]
        for url in host.jump_urls:
            args += ["--jump", url]
        if host.identity_files:
            args += ["--identity", host.identity_files[0]]
        return " ".join(shlex.quote(a) if a != "DB_URL" else a for a in args)

    def to_json(self) -> dict[str, object]:
        return {
            "alias": self.host.alias,
            "ssh": self.host.ssh_url,
            "jumps": self.host.jump_urls,
            "identity_files": list(self.host.identity_files),
            "missing_identity_files": list(self.host.missing_identity_files),
            "skipped_match_exec": [s.command for s in self.host.skipped_exec],
        }


def import_ssh_config(
    hosts: Sequence[str] = (), config_path: Path | None = None
) -> list[SshConfigHost]:
    """The named hosts (default: every concrete `Host`) as bastion URLs."""
    from tunnel_tui.engine.sshconfig import import_hosts

    return [SshConfigHost(h) for h in import_hosts(tuple(hosts), config_path)]
