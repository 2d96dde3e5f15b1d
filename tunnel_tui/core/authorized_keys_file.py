"""Pure editing of an OpenSSH `authorized_keys` text.

Rotation adds one line and later removes exactly one key, on a file that also holds
other people's keys, comments and options. So lines are matched by *key blob* (the
decoded base64 of the public key), never by text or comment, and every line that is
not the one being removed stays byte-identical (CRLF, odd spacing, trailing comments).

The line format follows sshd(8) "AUTHORIZED_KEYS FILE FORMAT": an optional
comma-separated options list (values in double quotes may contain commas, spaces and
backslash-escaped quotes), then the key type, the base64 blob and a free comment.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Key type names sshd accepts at the start of the key part (certificates included).
_KEY_TYPE = re.compile(
    r"^(?:ssh-(?:ed25519|rsa|dss|ed448)"
    r"|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com"
    r"|[a-z0-9-]+-cert-v0[01]@openssh\.com)$"
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True)
class AuthorizedKey:
    """One key line: options text (as written, may be empty), type, blob, comment."""

    options: str
    key_type: str
    blob: bytes
    comment: str

    @property
    def public_line(self) -> str:
        """The "type base64" part, without options or comment."""
        return f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"


def _decode_blob(text: str) -> bytes | None:
    if not _BASE64.match(text):
        return None
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return blob or None


def _split_options(line: str) -> tuple[str, str] | None:
    """Split `options rest` at the first whitespace outside double quotes."""
    in_quotes = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_quotes and ch == "\\" and i + 1 < len(line):
            i += 2
            continue
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in " \t":
            return line[:i], line[i:].lstrip(" \t")
        i += 1
    return None  # options never ended, or an unterminated quote: not a valid line


def _parse_key_part(text: str) -> tuple[str, bytes, str] | None:
    parts = text.split(None, 2)
    if len(parts) < 2 or not _KEY_TYPE.match(parts[0]):
        return None
    blob = _decode_blob(parts[1])
    if blob is None:
        return None
    return parts[0], blob, parts[2] if len(parts) > 2 else ""


def parse_line(line: str) -> AuthorizedKey | None:
    """The key on one line (without its line ending), or None for blank/comment/garbage."""
    text = line.rstrip("\r\n").strip(" \t")
    if not text or text.startswith("#"):
        return None
    # Like sshd: first try the line as a bare key, then as `options key`.
    bare = _parse_key_part(text)
    if bare is not None:
        return AuthorizedKey("", *bare)
    split = _split_options(text)
    if split is None:
        return None
    options, rest = split
    keyed = _parse_key_part(rest)
    if keyed is None:
        return None
    return AuthorizedKey(options, *keyed)


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept ("\\n" or "\\r\\n"); "".join(result) == text.

    Only "\\n" ends a line, as for sshd (str.splitlines would also split on form feeds).
    """
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def blob_of(public_key: str | bytes) -> bytes:
    """The key blob of "type base64 [comment]", an authorized_keys line, or a raw blob."""
    if isinstance(public_key, bytes):
        return public_key
    parsed = parse_line(public_key)
    if parsed is None:
        raise ValueError("not an OpenSSH public key line")
    return parsed.blob


def find_keys(text: str, public_key: str | bytes) -> list[AuthorizedKey]:
    """Every line holding this key (usually zero or one)."""
    blob = blob_of(public_key)
    found = []
    for line in split_lines(text):
        parsed = parse_line(line)
        if parsed is not None and parsed.blob == blob:
            found.append(parsed)
    return found


def contains_key(text: str, public_key: str | bytes) -> bool:
    return bool(find_keys(text, public_key))


def invalid_lines(text: str) -> list[int]:
    """1-based numbers of lines sshd would not read as a key (not blank, not a comment)."""
    bad = []
    for number, line in enumerate(split_lines(text), start=1):
        stripped = line.rstrip("\r\n").strip(" \t")
        if stripped and not stripped.startswith("#") and parse_line(line) is None:
            bad.append(number)
    return bad


def add_key(text: str, line: str) -> str:
    """`text` with `line` appended, unless its key is already there (then unchanged).

    A missing final newline is added first so the new line never joins the last one;
    the new line uses the file's line ending (CRLF if the last line has one).
    """
    new = line.rstrip("\r\n")
    if "\n" in new or "\r" in new:
        raise ValueError("an authorized_keys entry is one line")
    parsed = parse_line(new)
    if parsed is None:
        raise ValueError("not an authorized_keys line")
    if contains_key(text, parsed.blob):
        return text
    ending = "\r\n" if text.endswith("\r\n") else "\n"
    if text and not text.endswith("\n"):
        text += ending
    return text + new + ending


def add_key_like(text: str, line: str, like: str | bytes) -> str:
    """Add `line` (no options) with the options of the first line holding key `like`.

    Rotation installs the new key with the same restrictions (restrict, permitopen=,
    from=, command=) the bastion's admin gave the old one.
    """
    found = find_keys(text, like)
    if found and found[0].options:
        line = f"{found[0].options} {line.strip()}"
    return add_key(text, line)


def remove_key(text: str, public_key: str | bytes) -> str:
    """`text` without the lines holding this key; every other byte stays as it was."""
    blob = blob_of(public_key)
    kept = []
    for line in split_lines(text):
        parsed = parse_line(line)
        if parsed is not None and parsed.blob == blob:
            continue
        kept.append(line)
    return "".join(kept)
