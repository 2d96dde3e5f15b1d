"""A read-only known_hosts for the agent, used only while `core.known_hosts` is not
available: the agent never adds trust itself (consent happens in `validate`)."""

from __future__ import annotations

from pathlib import Path

import asyncssh

from tunnel_tui.core.errors import HostKeyError


class ReadOnlyKnownHosts:
    def __init__(self, path: Path) -> None:
        self.path = path

    def trusted_keys(self, host: str, port: int) -> list[str]:
        if not self.path.exists():
            return []
        entries = asyncssh.import_known_hosts(self.path.read_text())
        trusted = entries.match(host, "", port)[0]
        return [key.export_public_key().decode().strip() for key in trusted]

    def check(self, host: str, port: int, public_line: str) -> str:
        trusted = {" ".join(line.split()[:2]) for line in self.trusted_keys(host, port)}
        if not trusted:
            return "unknown"
        return "trusted" if " ".join(public_line.split()[:2]) in trusted else "changed"

    def add(self, host: str, port: int, public_line: str) -> None:
        raise HostKeyError(
            "the agent does not record new host keys",
            hint="run `tunnel-tui validate NAME --accept-new-host-key` first",
        )
