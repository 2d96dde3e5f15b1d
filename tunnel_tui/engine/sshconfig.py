"""Import hosts from ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump) with
asyncssh's own parser, so Include, Match, `Host *` defaults and %-expansion behave as
asyncssh (and mostly OpenSSH) do.

We use the lower-level `SSHClientConfig` rather than `SSHClientConnectionOptions`:
the latter loads every IdentityFile and a missing one is fatal (ASYNCSSH-NOTES §3),
while OpenSSH just skips it. Missing identity files are reported, not raised.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.config import SSHClientConfig

from tunnel_tui.core.errors import ConfigError, UsageError
from tunnel_tui.core.model import SshEndpoint

MAX_JUMP_DEPTH = 8


@dataclass(frozen=True)
class ImportedHost:
    alias: str  # the `Host` name in the config
    endpoint: SshEndpoint  # resolved HostName/User/Port
    jumps: tuple[SshEndpoint, ...]  # ProxyJump chain, workstation outward
    identity_files: tuple[str, ...]  # existing files (~ expanded)
    missing_identity_files: tuple[str, ...]

    @property
    def ssh_url(self) -> str:
        return _url(self.endpoint)

    @property
    def jump_urls(self) -> list[str]:
        return [_url(j) for j in self.jumps]


def _url(endpoint: SshEndpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"ssh://{endpoint.user}@{host}:{endpoint.port}"


def default_path() -> Path:
    return Path.home() / ".ssh" / "config"


def host_aliases(path: Path | None = None) -> list[str]:
    """Concrete `Host` names (patterns with * ? ! left out), in file order."""
    path = path or default_path()
    names: list[str] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    for line in lines:
        words = line.replace("=", " ", 1).split()
        if len(words) >= 2 and words[0].lower() == "host":
            for name in words[1:]:
                if not any(c in name for c in "*?!") and name not in names:
                    names.append(name)
    return names


def _load(path: Path, alias: str) -> Any:
    try:
        return SSHClientConfig.load(
            None, [str(path)], False, False, False, getpass.getuser(), (), alias, ()
        )
    except asyncssh.ConfigParseError as exc:
        raise ConfigError(f"{path}: {exc}", hint="fix that line of your ssh config") from exc


def _endpoint(cfg: Any, alias: str) -> SshEndpoint:
    host = cfg.get("Hostname") or alias  # asyncssh spells it 'Hostname' (NOTES §3)
    user = cfg.get("User") or getpass.getuser()
    port = cfg.get("Port") or 22
    return SshEndpoint(host=str(host), user=str(user), port=int(port))


def _parse_jump(spec: str, path: Path, depth: int) -> list[SshEndpoint]:
    """One ProxyJump value: "a,user@b:2222" — each part may itself be an alias."""
    chain: list[SshEndpoint] = []
    for part in spec.split(","):
        part = part.strip().removeprefix("ssh://")
        if not part:
            continue
        user: str | None = None
        if "@" in part:
            user, part = part.rsplit("@", 1)
        port: int | None = None
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif part.count(":") == 1:
            host, port_text = part.split(":")
            port = int(port_text)
        else:
            host = part
        imported = _import_one(host, path, depth + 1)
        chain.extend(imported.jumps)
        endpoint = imported.endpoint
        chain.append(
            SshEndpoint(host=endpoint.host, user=user or endpoint.user,
                        port=port or endpoint.port)
        )
    return chain


def _import_one(alias: str, path: Path, depth: int = 0) -> ImportedHost:
    if depth > MAX_JUMP_DEPTH:
        raise ConfigError(f"ProxyJump chain through {alias} is too deep (a loop?)")
    cfg = _load(path, alias)
    endpoint = _endpoint(cfg, alias)
    jump_spec = cfg.get("ProxyJump")
    jumps = tuple(_parse_jump(str(jump_spec), path, depth)) if jump_spec else ()
    present: list[str] = []
    missing: list[str] = []
    for name in cfg.get("IdentityFile", ()) or ():
        expanded = os.path.expanduser(str(name))
        (present if os.path.exists(expanded) else missing).append(expanded)
    return ImportedHost(alias, endpoint, jumps, tuple(present), tuple(missing))


def import_hosts(aliases: Sequence[str] = (), path: Path | None = None) -> list[ImportedHost]:
    """The named hosts (or every concrete Host of the file) as SSH endpoints."""
    path = path or default_path()
    if not path.exists():
        raise UsageError(f"no ssh config at {path}")
    names = list(aliases) or host_aliases(path)
    known = set(host_aliases(path))
    out = []
    for alias in names:
        if aliases and alias not in known:
            # OpenSSH would still connect to it by name; say so rather than guess.
            raise UsageError(f"{alias} is not a Host in {path}", field="host")
        out.append(_import_one(alias, path))
    return out
