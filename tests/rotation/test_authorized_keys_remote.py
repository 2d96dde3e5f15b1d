"""Editing a real OpenSSH bastion's authorized_keys: SFTP, exec fallback, manual."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.rotation.helpers import connect_with, openssh_login_works, write_identity
from tunnel_tui.core import keys
from tunnel_tui.core.authorized_keys_file import split_lines
from tunnel_tui.engine.authorized_keys import (
    InstallMethod,
    ManualInstallRequired,
    add_authorized_key,
    remove_authorized_key,
)

pytestmark = pytest.mark.timeout(60)

OTHER_USER = keys.generate().public_line


def _read(server: Any) -> str:
    return str(server.authorized_keys_path.read_bytes().decode())  # no newline translation


def _seed_file(server: Any, current_line: str, current_options: str | None) -> str:
    """A lived-in authorized_keys: comments, options, a CRLF line, someone else's key."""
    cur = f"{current_options} {current_line}" if current_options else current_line
    text = (
        "# keys of the ops team\n"
        f'restrict,port-forwarding,permitopen="10.0.0.5:5432" {OTHER_USER} alice@laptop\r\n'
        "\n"
        f"{cur} tunnel-tui:prod\n"
        f'from="10.1.0.0/16",command="echo a, b" {keys.generate().public_line}  bob\n'
    )
    path = server.authorized_keys_path
    path.write_bytes(text.encode())
    os.chmod(path, 0o600)
    st = os.stat(path.parent)
    os.chown(path, st.st_uid, st.st_gid)
    return text


@pytest.mark.parametrize("sftp", [True, False], ids=["sftp", "exec"])
async def test_add_then_remove_keeps_other_lines(
    sshd_factory: Any, tmp_path: Path, sftp: bool
) -> None:
    options = {} if sftp else {"Subsystem": "sftp /bin/false"}
    server = sshd_factory(options=options, strict_modes=True)
    old, new = keys.generate(), keys.generate()
    before = _seed_file(server, old.public_line, None)
    new_line = keys.authorized_keys_line(new.public_line, "tunnel-tui:prod")
    expected = InstallMethod.SFTP if sftp else InstallMethod.EXEC

    async with connect_with(server, old.private_pem.reveal()) as conn:
        result = await add_authorized_key(conn, new_line)
        assert (result.method, result.changed) == (expected, True)
        again = await add_authorized_key(conn, new_line + " duplicate")
        assert not again.changed
    after_add = _read(server)
    assert after_add == before + new_line + "\n"
    assert stat.S_IMODE(os.stat(server.authorized_keys_path).st_mode) == 0o600
    leftovers = [p.name for p in server.authorized_keys_path.parent.iterdir()]
    assert leftovers == ["authorized_keys"]

    new_id = write_identity(tmp_path, new.private_pem.reveal(), "new")
    old_id = write_identity(tmp_path, old.private_pem.reveal(), "old")
    assert openssh_login_works(server, new_id)  # StrictModes yes: mode and owner right

    async with connect_with(server, new.private_pem.reveal()) as conn:
        result = await remove_authorized_key(conn, old.public_line)
        assert (result.method, result.changed) == (expected, True)
    after = _read(server)
    lines = split_lines(before)
    assert after == "".join(lines[:3] + lines[4:]) + new_line + "\n"  # byte-compare
    assert not openssh_login_works(server, old_id)
    assert openssh_login_works(server, new_id)


async def test_restricted_key_can_still_rewrite_by_sftp(sshd_factory: Any) -> None:
    server = sshd_factory(strict_modes=True)
    old, new = keys.generate(), keys.generate()
    before = _seed_file(server, old.public_line, 'restrict,port-forwarding,permitopen="h:1"')
    async with connect_with(server, old.private_pem.reveal()) as conn:
        result = await add_authorized_key(conn, new.public_line, like=old.public_line)
    assert result.method is InstallMethod.SFTP
    # The new line keeps the old line's restrictions.
    opts = 'restrict,port-forwarding,permitopen="h:1"'
    assert _read(server) == before + f"{opts} {new.public_line}\n"


async def test_forced_command_account_needs_manual_install(sshd_factory: Any) -> None:
    server = sshd_factory()
    old, new = keys.generate(), keys.generate()
    before = _seed_file(server, old.public_line, 'command="echo forced-cmd"')
    async with connect_with(server, old.private_pem.reveal()) as conn:
        with pytest.raises(ManualInstallRequired) as info:
            await add_authorized_key(conn, new.public_line, timeout=10)
    assert "authorized_keys" in info.value.message
    assert _read(server) == before


async def test_creates_ssh_dir_and_file_when_missing(sshd_factory: Any) -> None:
    # Log in through a second authorized_keys file so ~/.ssh can be absent.
    server = sshd_factory(options={"AuthorizedKeysFile": ".ssh/authorized_keys .extra_keys"})
    old, new = keys.generate(), keys.generate()
    extra = server.home / ".extra_keys"
    extra.write_text(old.public_line + "\n")
    st = os.stat(server.home)
    os.chown(extra, st.st_uid, st.st_gid)
    ssh_dir = server.authorized_keys_path.parent
    server.authorized_keys_path.unlink()
    ssh_dir.rmdir()
    async with connect_with(server, old.private_pem.reveal()) as conn:
        await add_authorized_key(conn, new.public_line)
    assert stat.S_IMODE(os.stat(ssh_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(server.authorized_keys_path).st_mode) == 0o600
    assert _read(server) == new.public_line + "\n"
