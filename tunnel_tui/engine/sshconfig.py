"""Import hosts from ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump) with
asyncssh's own parser, so Include, Match, `Host *` defaults and %-expansion behave as
asyncssh (and mostly OpenSSH) do.

We use the lower-level `SSHClientConfig` rather than `SSHClientConnectionOptions`:
the latter loads every IdentityFile and a missing one is fatal (ASYNCSSH-NOTES §3),
while OpenSSH just skips it. Missing identity files are reported, not raised.

`Match exec` is never run: asyncssh's loader runs its command through a shell while
*reading* the file, so showing an untrusted (or `Include`d) config would run code.
Our loader treats a Match line with an `exec` condition as not matching (its block
does not apply) and reports it.
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
class SkippedExec:
    """A `Match exec` condition we did not run."""

    command: str
    path: str
    line: int

    def describe(self) -> str:
        return (f"Match exec {self.command!r} ({self.path} line {self.line}) was not run "
                "and counts as not matching")


class _NoExecConfig(SSHClientConfig):
    """asyncssh's client config, except that `Match exec` runs nothing."""

    skipped: list[SkippedExec]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.skipped = []

    def _match_no_exec(self, option: str, args: list[str]) -> None:
        commands = _exec_commands(args)
        if not commands:
            SSHClientConfig._match(self, option, args)
            return
        for command in commands:
            self.skipped.append(SkippedExec(command, str(self._path), self._line_no))
        args.clear()
        self._matching = False

    _handlers = {**SSHClientConfig._handlers, "match": ("Match", _match_no_exec)}


_NO_ARGUMENT = {"all", "canonical", "final"}


def _exec_commands(args: list[str]) -> list[str]:
    """The commands of the `exec` / `!exec` conditions of one Match line."""
    commands = []
    index = 0
    while index < len(args):
        keyword = args[index].lower().lstrip("!")
        if keyword in _NO_ARGUMENT:
            index += 1
            continue
        if keyword == "exec" and index + 1 < len(args):
            commands.append(args[index + 1])
        index += 2
    return commands


@dataclass(frozen=True)
class ImportedHost:
    alias: str  # the `Host` name in the config
    endpoint: SshEndpoint  # resolved HostName/User/Port
    jumps: tuple[SshEndpoint, ...]  # ProxyJump chain, workstation outward
    identity_files: tuple[str, ...]  # existing files (~ expanded)
    missing_identity_files: tuple[str, ...]
    skipped_exec: tuple[SkippedExec, ...] = ()

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
        return _NoExecConfig.load(
            None, [str(path)], False, False, False, getpass.getuser(), (), alias, ()
        )
    except asyncssh.ConfigParseError as exc:
        raise ConfigError(f"{path}: {exc}", hint="fix that line of your ssh config") from exc


def _endpoint(cfg: Any, alias: str) -> SshEndpoint:
    host = cfg.get("Hostname") or alias  # asyncssh spells it 'Hostname' (NOTES §3)
    user = cfg.get("User") or getpass.getuser()
    port = cfg.get("Port") or 22
    return SshEndpoint(host=str(host), user=str(user), port=int(port))


def _parse_jump(
    spec: str, path: Path, depth: int
) -> tuple[list[SshEndpoint], list[SkippedExec]]:
    """One ProxyJump value: "a,user@b:2222" — each part may itself be an alias."""
    chain: list[SshEndpoint] = []
    skipped: list[SkippedExec] = []
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
        skipped.extend(imported.skipped_exec)
        chain.extend(imported.jumps)
        endpoint = imported.endpoint
        chain.append(
            SshEndpoint(host=endpoint.host, user=user or endpoint.user,
                        port=port or endpoint.port)
        )
    return chain, skipped


def _import_one(alias: str, path: Path, depth: int = 0) -> ImportedHost:
    if depth > MAX_JUMP_DEPTH:
        raise ConfigError(f"ProxyJump chain through {alias} is too deep (a loop?)")
    cfg = _load(path, alias)
    endpoint = _endpoint(cfg, alias)
    jump_spec = cfg.get("ProxyJump")
    chain, jump_skipped = _parse_jump(str(jump_spec), path, depth) if jump_spec else ([], [])
    jumps = tuple(chain)
    present: list[str] = []
    missing: list[str] = []
    for name in cfg.get("IdentityFile", ()) or ():
        expanded = os.path.expanduser(str(name))
        (present if os.path.exists(expanded) else missing).append(expanded)
    skipped = list(cfg.skipped) + list(jump_skipped)
    return ImportedHost(alias, endpoint, jumps, tuple(present), tuple(missing),
                        tuple(dict.fromkeys(skipped)))


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
