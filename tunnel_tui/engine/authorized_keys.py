"""Edit the bastion user's `~/.ssh/authorized_keys` through an open SSH connection.

Order (ASYNCSSH-NOTES §6): SFTP first — read, write a temp file next to the original
with the same mode, fsync, `posix-rename` over the original (atomic: readers see the
old file or the new one, never a truncated one; no shell, so no quoting of key text).
Where SFTP is refused (no subsystem, `restrict`-less forced command: SFTPBadMessage,
SFTPError, ChannelOpenError) an exec session runs a fixed POSIX sh script read from
stdin, the file content inside a quoted here-document (again: no key text on a command
line), writing a temp file and `mv`-ing it into place. When neither works (a
forced-command or forwarding-only account) `ManualInstallRequired` says so, and the
caller shows the line for the user to paste.

The edit itself is a pure function of the text (core.authorized_keys_file).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import asyncssh

from tunnel_tui.core.authorized_keys_file import (
    add_key,
    add_key_like,
    invalid_lines,
    remove_key,
)
from tunnel_tui.core.errors import TunnelTuiError

log = logging.getLogger(__name__)

SSH_DIR = ".ssh"
AUTHORIZED_KEYS = ".ssh/authorized_keys"

# Text is decoded so that any byte (a Latin-1 comment, say) round-trips unchanged.
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class InstallMethod(StrEnum):
    SFTP = "sftp"
    EXEC = "exec"


class ManualInstallRequired(TunnelTuiError):
    """The account allows neither SFTP nor a shell: a person has to edit the file."""


class AuthorizedKeysError(TunnelTuiError):
    """The file was read but could not be written (or would be invalid)."""


@dataclass(frozen=True)
class EditResult:
    method: InstallMethod
    changed: bool


Edit = Callable[[str], str]

_SFTP_FAILURES = (asyncssh.SFTPError, asyncssh.ChannelOpenError, asyncssh.Error, OSError)


async def add_authorized_key(
    conn: asyncssh.SSHClientConnection,
    line: str,
    *,
    like: str | None = None,
    timeout: float = 20.0,
) -> EditResult:
    """Append `line` unless its key is already authorized (then nothing is written).

    With `like` (a public key), the new line gets the options of that key's line.
    """

    def edit(text: str) -> str:
        return add_key(text, line) if like is None else add_key_like(text, line, like)

    return await edit_authorized_keys(conn, edit, timeout=timeout)


async def remove_authorized_key(
    conn: asyncssh.SSHClientConnection, public_key: str, *, timeout: float = 20.0
) -> EditResult:
    """Remove the lines holding this key (matched by blob); every other line is kept."""
    return await edit_authorized_keys(
        conn, lambda text: remove_key(text, public_key), timeout=timeout
    )


async def edit_authorized_keys(
    conn: asyncssh.SSHClientConnection, edit: Edit, *, timeout: float = 20.0
) -> EditResult:
    try:
        return await asyncio.wait_for(_edit_sftp(conn, edit), timeout)
    except AuthorizedKeysError:
        raise
    except (*_SFTP_FAILURES, TimeoutError) as exc:
        log.info("SFTP edit of authorized_keys failed (%s); trying an exec session", exc)
    try:
        return await asyncio.wait_for(_edit_exec(conn, edit), timeout)
    except (AuthorizedKeysError, ManualInstallRequired):
        raise
    except (asyncssh.Error, OSError, TimeoutError, UnicodeError) as exc:
        log.info("exec edit of authorized_keys failed (%s)", exc)
        raise _manual() from None


def _manual() -> ManualInstallRequired:
    return ManualInstallRequired(
        "the bastion account allows neither SFTP nor a shell to edit authorized_keys",
        hint="add the new public key line to ~/.ssh/authorized_keys on the bastion yourself "
        "(rotate-key --manual shows it and waits)",
    )


def _as_bytes(data: str | bytes) -> bytes:
    # Files opened "rb" return bytes; asyncssh's stubs say AnyStr.
    return data if isinstance(data, bytes) else data.encode(_ENCODING, _ERRORS)


def _apply(edit: Edit, text: str) -> str:
    new = edit(text)
    # Never write a file sshd would read worse than before.
    if len(invalid_lines(new)) > len(invalid_lines(text)):
        raise AuthorizedKeysError("refusing to write an authorized_keys with invalid lines")
    return new


# --- SFTP --------------------------------------------------------------------------


async def _edit_sftp(conn: asyncssh.SSHClientConnection, edit: Edit) -> EditResult:
    async with conn.start_sftp_client() as sftp:
        path = AUTHORIZED_KEYS
        mode = 0o600
        text = ""
        if not await sftp.exists(SSH_DIR):
            await sftp.mkdir(SSH_DIR, asyncssh.SFTPAttrs(permissions=0o700))
        elif await sftp.islink(path):
            # Edit the file the link points to; replacing the link would break the setup.
            path = await sftp.realpath(path)
        if await sftp.exists(path):
            attrs = await sftp.stat(path)
            mode = (attrs.permissions or 0o600) & 0o7777
            async with sftp.open(path, "rb") as f:
                text = _as_bytes(await f.read()).decode(_ENCODING, _ERRORS)
        new = _apply(edit, text)
        if new == text:
            return EditResult(InstallMethod.SFTP, changed=False)
        directory = path.rsplit("/", 1)[0] if "/" in path else "."
        tmp = f"{directory}/authorized_keys.tunnel-tui.{secrets.token_hex(6)}"
        data = new.encode(_ENCODING, _ERRORS)
        try:
            async with sftp.open(tmp, "xb", asyncssh.SFTPAttrs(permissions=mode)) as f:
                await f.write(data)
                await f.fsync()
            # The server's umask may have narrowed the mode at create: set it exactly.
            await sftp.chmod(tmp, mode)
            await sftp.posix_rename(tmp, path)
        except BaseException:
            try:
                await sftp.remove(tmp)
            except (asyncssh.SFTPError, OSError):
                pass  # already renamed or never created
            raise
        async with sftp.open(path, "rb") as f:
            if _as_bytes(await f.read()) != data:
                raise AuthorizedKeysError("authorized_keys changed while it was being edited")
        return EditResult(InstallMethod.SFTP, changed=True)


# --- exec ----------------------------------------------------------------------------

# Each script prints a marker built from two halves, so a forced command that echoes
# its input (command="cat") cannot fake it.
_READ_SCRIPT = """\
cd || exit 1
printf '%s%s\\n' tunnel-tui- read-{nonce}
if [ -f .ssh/authorized_keys ]; then cat .ssh/authorized_keys || exit 1; fi
exit 0
"""

_WRITE_SCRIPT = """\
umask 077
cd || exit 1
[ -d .ssh ] || mkdir -m 700 .ssh || exit 1
f=.ssh/authorized_keys
[ -L "$f" ] && f=$(readlink "$f")
case "$f" in /*|.ssh/*) ;; *) f=".ssh/$f" ;; esac
t="$f.tunnel-tui.$$"
if [ -f "$f" ]; then cp -p "$f" "$t" || exit 1; fi
cat > "$t" <<'{delim}' || {{ rm -f "$t"; exit 1; }}
{content}{delim}
mv -f "$t" "$f" || {{ rm -f "$t"; exit 1; }}
printf '%s%s\\n' tunnel-tui- written-{nonce}
"""


async def _run_script(conn: asyncssh.SSHClientConnection, script: str) -> bytes:
    result = await conn.run("sh -s", input=script.encode(_ENCODING, _ERRORS), encoding=None)
    stdout = result.stdout
    if isinstance(stdout, str):
        stdout = stdout.encode(_ENCODING, _ERRORS)
    return stdout or b""


async def _edit_exec(conn: asyncssh.SSHClientConnection, edit: Edit) -> EditResult:
    nonce = secrets.token_hex(6)
    out = await _run_script(conn, _READ_SCRIPT.format(nonce=nonce))
    marker = f"tunnel-tui-read-{nonce}\n".encode()
    if not out.startswith(marker):
        raise _manual()  # a forced command answered instead of our script
    text = out[len(marker) :].decode(_ENCODING, _ERRORS)
    new = _apply(edit, text)
    if new == text:
        return EditResult(InstallMethod.EXEC, changed=False)
    content = new if new.endswith("\n") or not new else new + "\n"  # a here-doc ends lines
    delim = f"TUNNEL_TUI_EOF_{secrets.token_hex(8)}"
    if delim in content:  # pragma: no cover - 64 random bits
        raise AuthorizedKeysError("could not pick a here-document delimiter")
    out = await _run_script(conn, _WRITE_SCRIPT.format(delim=delim, content=content, nonce=nonce))
    if f"tunnel-tui-written-{nonce}".encode() not in out:
        raise AuthorizedKeysError(
            "the bastion did not confirm writing authorized_keys",
            hint="check the bastion user's disk space and ~/.ssh permissions",
        )
    return EditResult(InstallMethod.EXEC, changed=True)
