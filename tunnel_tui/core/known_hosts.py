"""Trusted SSH host keys: our own known_hosts file (OpenSSH format, hashed entries,
written atomically 0600) plus the user's ~/.ssh/known_hosts, read-only.

Trust on first use happens only after consent (the caller shows the fingerprint and
calls `add`). A key that differs from the recorded ones, including a key of a type
not recorded for the host, is CHANGED: a hard refusal, and the file is left alone
(ASYNCSSH-NOTES §1: asyncssh itself cannot tell unknown from changed).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from tunnel_tui.core import paths
from tunnel_tui.core.atomic import read_private_file, write_private_file
from tunnel_tui.core.errors import ConfigError, HostKeyError, KeyImportError, UsageError
from tunnel_tui.core.filelock import locked
from tunnel_tui.core.keys import fingerprint_blob, parse_public_line

_HASH_MAGIC = "|1|"


class HostKeyStatus(StrEnum):
    TRUSTED = "trusted"
    UNKNOWN = "unknown"
    CHANGED = "changed"


def host_name(host: str, port: int) -> str:
    """The name OpenSSH records: `host` for port 22, else `[host]:port`."""
    host = host.strip().lower()
    return host if port == 22 else f"[{host}]:{port}"


def hash_name(name: str, salt: bytes | None = None) -> str:
    """`|1|salt|hmac-sha1(salt, name)`, as `ssh-keygen -H` writes it."""
    salt = os.urandom(20) if salt is None else salt
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"{_HASH_MAGIC}{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


def _hashed_matches(field: str, name: str) -> bool:
    try:
        salt_b64, mac_b64 = field[len(_HASH_MAGIC) :].split("|", 1)
        salt = base64.b64decode(salt_b64, validate=True)
        mac = base64.b64decode(mac_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    expected = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(mac, expected)


def _patterns_match(field: str, name: str) -> bool:
    """OpenSSH host patterns: comma list, `*`/`?` wildcards, `!` negation wins."""
    if field.startswith(_HASH_MAGIC):
        return _hashed_matches(field, name)
    matched = False
    for pattern in field.lower().split(","):
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if not pattern:
            continue
        glob = pattern.replace("[", "[[]") if "[" in pattern else pattern
        if fnmatch.fnmatchcase(name, glob):
            if negated:
                return False
            matched = True
    return matched


@dataclass(frozen=True)
class KnownHostEntry:
    """One key line of a known_hosts file."""

    source: Path
    line_no: int  # 1-based
    marker: str | None  # "@revoked", "@cert-authority" or None
    hosts: str  # the raw host field (hashed or patterns)
    public_line: str  # "type base64"
    fingerprint: str
    labels: tuple[str, ...] = ()  # the given "host:port" names this entry matches

    @property
    def hashed(self) -> bool:
        return self.hosts.startswith(_HASH_MAGIC)

    @property
    def key_type(self) -> str:
        return self.public_line.split()[0]

    @property
    def shown_hosts(self) -> str:
        """What can be shown of the host field: hashed names cannot be reversed."""
        if self.hashed:
            return ", ".join(self.labels) if self.labels else "(hashed)"
        return self.hosts

    def matches(self, name: str) -> bool:
        return _patterns_match(self.hosts, name)

    def to_json(self) -> dict[str, object]:
        return {
            "hosts": self.shown_hosts,
            "hashed": self.hashed,
            "key_type": self.key_type,
            "fingerprint": self.fingerprint,
            "marker": self.marker,
            "labels": list(self.labels),
            "source": str(self.source),
            "line": self.line_no,
        }


def parse_line(line: str, source: Path, line_no: int) -> KnownHostEntry | None:
    """A key line, or None for comments, blanks and lines we cannot read."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split()
    marker = None
    if fields[0].startswith("@"):
        marker, fields = fields[0], fields[1:]
    if len(fields) < 3:
        return None
    public_line = f"{fields[1]} {fields[2]}"
    try:
        _, blob = parse_public_line(public_line)
    except KeyImportError:
        return None  # an unknown key type (sk-*, certs, ...): not ours to judge
    return KnownHostEntry(source, line_no, marker, fields[0], public_line, fingerprint_blob(blob))


def parse_file(path: Path, *, ours: bool = False) -> list[KnownHostEntry]:
    """Entries of a known_hosts file. `ours`: our own file, read only if it (and its
    directory) belongs to us and nobody else can write it (ConfigError otherwise)."""
    if ours:
        data = read_private_file(path)
        text = "" if data is None else data.decode(errors="replace")
    else:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    entries = (parse_line(line, path, no) for no, line in enumerate(text.splitlines(), 1))
    return [entry for entry in entries if entry is not None]


FINGERPRINT_FORM = "SHA256: followed by 43 base64 characters, as ssh-keygen -l prints it"


def normalize_fingerprint(text: str) -> str | None:
    """`SHA256:<43 base64 chars>` (ssh-keygen's form, '=' padding dropped), or None."""
    head, sep, body = text.strip().partition(":")
    body = body.rstrip("=")
    if not sep or head.upper() != "SHA256" or len(body) != 43:
        return None
    if any(not (c.isascii() and (c.isalnum() or c in "+/")) for c in body):
        return None
    return f"SHA256:{body}"


def parse_fingerprints(values: Iterable[str], option: str = "--accept-host-key") -> frozenset[str]:
    """`--accept-host-key` values, normalized; a malformed one is bad input (exit 2)."""
    out = set()
    for value in values:
        fingerprint = normalize_fingerprint(value)
        if fingerprint is None:
            raise UsageError(
                f"{option} {value!r} is not a SHA256 fingerprint ({FINGERPRINT_FORM})",
                field=option.lstrip("-"),
            )
        out.add(fingerprint)
    return frozenset(out)


def _blob(public_line: str) -> bytes:
    return parse_public_line(public_line)[1]


def _describe(public_line: str) -> str:
    key_type, blob = parse_public_line(public_line)
    return f"{fingerprint_blob(blob)} ({key_type.value})"


class HostKeyUnknownError(HostKeyError):
    """The bastion's key is not trusted yet: a person must check the fingerprint."""

    def __init__(
        self, host: str, port: int, public_line: str, *, connection: str | None = None
    ) -> None:
        self.host, self.port = host, port
        self.fingerprint = _describe(public_line).split()[0]
        self.public_line = " ".join(public_line.split()[:2])
        super().__init__(
            f"the host key of {host}:{port} is not known yet: {_describe(public_line)}",
            hint=f"check {self.fingerprint} with the bastion's admin, then run "
            f"tunnel-tui validate {connection or 'NAME'} --accept-host-key {self.fingerprint}",
        )


class HostKeyChangedError(HostKeyError):
    """The bastion offers a key other than the recorded one: possible MITM."""

    def __init__(
        self,
        host: str,
        port: int,
        public_line: str,
        recorded: Sequence[str],
        *,
        revoked: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.new_fingerprint = _describe(public_line).split()[0]
        self.old_fingerprints = [_describe(line).split()[0] for line in recorded]
        old = ", ".join(_describe(line) for line in recorded) or "none"
        what = "is REVOKED" if revoked else "HAS CHANGED"
        super().__init__(
            f"WARNING: THE HOST KEY OF {host}:{port} {what}. Someone could be eavesdropping "
            "on you right now (man-in-the-middle attack), or the host key was replaced. "
            f"Recorded: {old}; offered now: {_describe(public_line)}. "
            "Nothing was changed in known_hosts.",
            hint=f"if the change is expected, run tunnel-tui hosts forget {host}:{port}",
        )


class KnownHosts:
    """Our known_hosts file, plus the user's ~/.ssh/known_hosts read-only."""

    def __init__(
        self,
        path: Path | None = None,
        user_known_hosts: Path | None = None,
        *,
        read_user_known_hosts: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else paths.known_hosts_path()
        if user_known_hosts is None and read_user_known_hosts:
            user_known_hosts = Path.home() / ".ssh" / "known_hosts"
        self.user_path = user_known_hosts

    def __repr__(self) -> str:
        return f"KnownHosts({str(self.path)!r}, user={str(self.user_path)!r})"

    # -- reading

    def _all_entries(self) -> list[KnownHostEntry]:
        entries = parse_file(self.path, ours=True)
        if self.user_path is not None:
            entries += parse_file(self.user_path)
        return entries

    def _for_host(self, host: str, port: int) -> tuple[list[str], list[str]]:
        """(trusted public lines, revoked public lines) recorded for host:port.

        Lines for `[host]:port` win; a port-less `host` line counts for any port when
        no port-specific line exists (OpenSSH and asyncssh both accept it).
        """
        entries = [e for e in self._all_entries() if e.marker != "@cert-authority"]
        exact = host_name(host, port)
        names = [exact] if port == 22 else [exact, host_name(host, 22)]
        revoked = [
            e.public_line
            for e in entries
            if e.marker == "@revoked" and any(e.matches(name) for name in names)
        ]
        for name in names:
            plain = [e for e in entries if e.marker is None and e.matches(name)]
            if plain:
                return _unique(e.public_line for e in plain), revoked
        return [], revoked

    def trusted_keys(self, host: str, port: int) -> list[str]:
        """Public lines ("type base64") trusted for host:port, revoked ones left out."""
        trusted, revoked = self._for_host(host, port)
        revoked_blobs = {_blob(line) for line in revoked}
        return [line for line in trusted if _blob(line) not in revoked_blobs]

    def check(self, host: str, port: int, public_line: str) -> HostKeyStatus:
        blob = _blob(public_line)
        trusted, revoked = self._for_host(host, port)
        if blob in {_blob(line) for line in revoked}:
            return HostKeyStatus.CHANGED
        if blob in {_blob(line) for line in trusted}:
            return HostKeyStatus.TRUSTED
        return HostKeyStatus.CHANGED if trusted else HostKeyStatus.UNKNOWN

    def require_trusted(
        self, host: str, port: int, public_line: str, *, connection: str | None = None
    ) -> None:
        """Raise HostKeyUnknownError / HostKeyChangedError unless the key is trusted."""
        status = self.check(host, port, public_line)
        if status is HostKeyStatus.TRUSTED:
            return
        if status is HostKeyStatus.UNKNOWN:
            raise HostKeyUnknownError(host, port, public_line, connection=connection)
        trusted, revoked = self._for_host(host, port)
        is_revoked = _blob(public_line) in {_blob(line) for line in revoked}
        raise HostKeyChangedError(host, port, public_line, trusted, revoked=is_revoked)

    def in_user_known_hosts(self, host: str, port: int) -> bool:
        """Whether ~/.ssh/known_hosts (which we never edit) has a line for host:port."""
        if self.user_path is None:
            return False
        name = host_name(host, port)
        return any(e.matches(name) for e in parse_file(self.user_path))

    def entries(
        self, label_hosts: Iterable[tuple[str, int]] = (), *, include_user: bool = False
    ) -> list[KnownHostEntry]:
        """Entries of our file (and the user's, if asked), each labelled with the given
        (host, port) pairs it matches: hashed names can only be recognised, not shown."""
        names = [(host_name(h, p), f"{h}:{p}") for h, p in label_hosts]
        entries = parse_file(self.path, ours=True)
        if include_user and self.user_path is not None:
            entries += parse_file(self.user_path)
        out = []
        for entry in entries:
            labels = tuple(label for name, label in names if entry.matches(name))
            out.append(replace(entry, labels=labels))
        return out

    # -- writing (our file only)

    def add(self, host: str, port: int, public_line: str) -> bool:
        """Record consent for this key (hashed line). False if it was already trusted.

        Refuses (HostKeyChangedError) when other keys are recorded for the host: the
        user must `forget` the old key first, knowingly.
        """
        _validate_host(host, port)
        key_line = " ".join(public_line.split()[:2])
        with locked(self._lock_path()):
            status = self.check(host, port, key_line)
            if status is HostKeyStatus.TRUSTED:
                return False
            if status is HostKeyStatus.CHANGED:
                self.require_trusted(host, port, key_line)
            existing = self._read_own()
            if existing and not existing.endswith(b"\n"):
                existing += b"\n"
            line = f"{hash_name(host_name(host, port))} {key_line}\n"
            paths.ensure_private_dir(self.path.parent)
            write_private_file(self.path, existing + line.encode())
        return True

    def forget(self, host: str, port: int) -> int:
        """Remove every line of OUR file that matches host:port; the number removed."""
        _validate_host(host, port)
        name = host_name(host, port)
        with locked(self._lock_path()):
            data = self._read_own()
            if not data:
                return 0
            kept: list[str] = []
            removed = 0
            for no, line in enumerate(data.decode(errors="surrogateescape").splitlines(True), 1):
                entry = parse_line(line, self.path, no)
                if entry is not None and entry.marker is None and entry.matches(name):
                    removed += 1
                else:
                    kept.append(line)
            if removed:
                write_private_file(self.path, "".join(kept).encode(errors="surrogateescape"))
        return removed

    def _read_own(self) -> bytes:
        return read_private_file(self.path) or b""

    def _lock_path(self) -> Path:
        paths.ensure_private_dir(self.path.parent)
        return self.path.with_name(self.path.name + ".lock")


def _unique(lines: Iterable[str]) -> list[str]:
    seen: dict[bytes, str] = {}
    for line in lines:
        seen.setdefault(_blob(line), line)
    return list(seen.values())


def _validate_host(host: str, port: int) -> None:
    if not host or any(c.isspace() or c in ",*?!|[]" for c in host):
        raise UsageError(f"not a host name: {host!r}", field="host")
    if not 0 < port < 65536:
        raise UsageError(f"port out of range: {port}", field="port")


def parse_host_port(text: str, default_port: int = 22) -> tuple[str, int]:
    """ "host", "host:port", "[v6]:port" or "v6" -> (host, port); UsageError if malformed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"cannot read {text!r} as HOST[:PORT]", field="host")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""  # a bare IPv6 address has several colons
    if port_text:
        if not port_text.isdigit():
            raise UsageError(f"port is not a number in {text!r}", field="port")
        port = int(port_text)
    else:
        port = default_port
    _validate_host(host, port)
    return host, port
