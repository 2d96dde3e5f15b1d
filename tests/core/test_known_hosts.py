"""Known hosts: our hashed lines work for OpenSSH itself, a changed key is refused
with both fingerprints and the file untouched, the user's own file is honoured but
never edited."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.binaries import require_binary
from tests.fixtures.env import IsolatedEnv
from tests.fixtures.sshd import ClientKeypair, SshdServer
from tunnel_tui.core import keys, paths
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.known_hosts import (
    HostKeyChangedError,
    HostKeyStatus,
    HostKeyUnknownError,
    KnownHosts,
    hash_name,
    parse_host_port,
)

A = keys.generate().public_line
B = keys.generate().public_line
RSA = keys.generate("rsa").public_line


def _user_file(env: IsolatedEnv, text: str) -> Path:
    ssh_dir = env.user_home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    path = ssh_dir / "known_hosts"
    path.write_text(text)
    return path


def test_hashed_line_is_found_by_ssh_keygen(tmp_path: Path) -> None:
    keygen = require_binary("ssh-keygen", "openssh-client")
    known = KnownHosts()
    assert known.add("127.0.0.1", 2222, A + " a-comment") is True
    assert known.add("bastion.example.com", 22, B) is True
    text = known.path.read_text()
    assert "127.0.0.1" not in text and "bastion" not in text  # hashed names only
    assert text.count("|1|") == 2
    for query, key in (("[127.0.0.1]:2222", A), ("bastion.example.com", B)):
        out = subprocess.run(
            [keygen, "-F", query, "-f", str(known.path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, query
        assert key.split()[1] in out.stdout
    missing = subprocess.run(
        [keygen, "-F", "[127.0.0.1]:2223", "-f", str(known.path)], capture_output=True, timeout=30
    )
    assert missing.returncode == 1


def test_file_is_private_even_under_umask_0() -> None:
    code = (
        "import os; os.umask(0); from tunnel_tui.core.known_hosts import KnownHosts; "
        f"KnownHosts().add('10.0.0.1', 22, {A!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert stat.S_IMODE(paths.known_hosts_path().stat().st_mode) == 0o600


def test_openssh_client_connects_with_our_file(
    sshd: SshdServer, client_keypair: ClientKeypair
) -> None:
    ssh = require_binary("ssh", "openssh-client")
    sshd.authorize(client_keypair.public_line)
    known = KnownHosts()
    assert known.check(sshd.host, sshd.port, sshd.host_public_key) is HostKeyStatus.UNKNOWN
    known.add(sshd.host, sshd.port, sshd.host_public_key)
    assert known.check(sshd.host, sshd.port, sshd.host_public_key) is HostKeyStatus.TRUSTED
    try:
        out = subprocess.run(
            [ssh, *sshd.ssh_args(client_keypair.path, known.path), "echo", "tunnel-ok"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        sshd.deauthorize(client_keypair.public_line)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tunnel-ok"
    # asyncssh (the engine) reads the same hashed line
    trusted = asyncssh.read_known_hosts(str(known.path)).match(sshd.host, sshd.host, sshd.port)[0]
    assert [k.get_fingerprint() for k in trusted] == [sshd.host_fingerprint]


def test_changed_host_key_is_refused_and_file_untouched(
    sshd_factory, client_keypair: ClientKeypair
) -> None:
    ssh = require_binary("ssh", "openssh-client")
    server: SshdServer = sshd_factory()
    known = KnownHosts()
    known.add(server.host, server.port, server.host_public_key)
    old_fp = server.host_fingerprint
    server.restart(new_host_key=True)  # a different machine answers on the same address
    new_fp = server.host_fingerprint
    assert new_fp != old_fp
    before = known.path.read_bytes()

    assert known.check(server.host, server.port, server.host_public_key) is HostKeyStatus.CHANGED
    with pytest.raises(HostKeyChangedError) as info:
        known.require_trusted(server.host, server.port, server.host_public_key)
    error = info.value
    assert "man-in-the-middle" in error.message
    assert old_fp in error.message and new_fp in error.message
    assert error.old_fingerprints == [old_fp] and error.new_fingerprint == new_fp
    assert (
        error.hint
        == f"if the change is expected, run tunnel-tui hosts forget 127.0.0.1:{server.port}"
    )
    with pytest.raises(HostKeyChangedError):  # consent for an unknown key is not enough here
        known.add(server.host, server.port, server.host_public_key)
    assert known.path.read_bytes() == before

    server.authorize(client_keypair.public_line)
    out = subprocess.run(
        [ssh, *server.ssh_args(client_keypair.path, known.path), "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0 and "HOST IDENTIFICATION HAS CHANGED" in out.stderr
    assert known.path.read_bytes() == before

    # the explicit way out: forget, then trust the new key
    assert known.forget(server.host, server.port) == 1
    assert known.check(server.host, server.port, server.host_public_key) is HostKeyStatus.UNKNOWN


def test_other_key_type_only_counts_as_changed() -> None:
    known = KnownHosts()
    known.add("10.1.1.1", 2200, RSA)
    assert known.check("10.1.1.1", 2200, A) is HostKeyStatus.CHANGED
    assert known.trusted_keys("10.1.1.1", 2200) == [RSA]


def test_unknown_error_names_fingerprint_and_next_step() -> None:
    with pytest.raises(HostKeyUnknownError) as info:
        KnownHosts().require_trusted("bastion.example.com", 22, A, connection="prod")
    assert keys.fingerprint(A) in info.value.message
    fp = keys.fingerprint(A)
    assert info.value.hint == (
        f"check {fp} with the bastion's admin, then run "
        f"tunnel-tui validate prod --accept-host-key {fp}"
    )


def test_users_known_hosts_is_honoured_read_only(isolated_env: IsolatedEnv) -> None:
    keygen = require_binary("ssh-keygen", "openssh-client")
    user_file = _user_file(
        isolated_env,
        "# my hosts\n"
        f"plain.example.com,10.0.0.5 {A} me@laptop\n"
        f"[ported.example.com]:2022 {B}\n"
        f"portless.example.com {A}\n"
        f"@cert-authority *.example.com {RSA}\n"
        "garbage line\n",
    )
    hashed_by_keygen = isolated_env.user_home / "hashed"
    hashed_by_keygen.write_text(f"keygen-hashed.example.com {B}\n")
    subprocess.run([keygen, "-H", "-f", str(hashed_by_keygen)], capture_output=True, check=True)
    with user_file.open("a") as handle:
        handle.write(hashed_by_keygen.read_text())
    before = user_file.read_bytes()

    known = KnownHosts()
    assert known.check("plain.example.com", 22, A) is HostKeyStatus.TRUSTED
    assert known.check("10.0.0.5", 22, A) is HostKeyStatus.TRUSTED
    assert known.check("PLAIN.example.com", 22, A) is HostKeyStatus.TRUSTED
    assert known.check("plain.example.com", 22, B) is HostKeyStatus.CHANGED
    assert known.check("ported.example.com", 2022, B) is HostKeyStatus.TRUSTED
    assert known.check("ported.example.com", 22, B) is HostKeyStatus.UNKNOWN
    assert known.check("portless.example.com", 2222, A) is HostKeyStatus.TRUSTED
    assert known.check("keygen-hashed.example.com", 22, B) is HostKeyStatus.TRUSTED
    # a CA line is not a host key
    assert known.check("x.example.com", 22, RSA) is HostKeyStatus.UNKNOWN

    assert known.in_user_known_hosts("ported.example.com", 2022)
    assert known.forget("ported.example.com", 2022) == 0  # never edits the user's file
    assert user_file.read_bytes() == before
    assert not known.path.exists()


def test_revoked_key_is_refused(isolated_env: IsolatedEnv) -> None:
    _user_file(isolated_env, f"@revoked * {A}\n")
    known = KnownHosts()
    assert known.check("any.example.com", 22, A) is HostKeyStatus.CHANGED
    known.add("any.example.com", 22, B)
    assert known.trusted_keys("any.example.com", 22) == [B]
    with pytest.raises(HostKeyChangedError, match="REVOKED"):
        known.require_trusted("any.example.com", 22, A)


def test_patterns_wildcards_and_negation(isolated_env: IsolatedEnv) -> None:
    _user_file(isolated_env, f"*.corp.example,!evil.corp.example {A}\n")
    known = KnownHosts()
    assert known.check("db.corp.example", 22, A) is HostKeyStatus.TRUSTED
    assert known.check("evil.corp.example", 22, A) is HostKeyStatus.UNKNOWN


def test_forget_counts_and_keeps_other_lines() -> None:
    known = KnownHosts()
    known.add("10.0.0.1", 2222, A)
    known.add("10.0.0.2", 2222, A)
    with known.path.open("a") as handle:
        handle.write(f"# kept comment\n{hash_name('[10.0.0.1]:2222')} {RSA}\n")
    assert known.forget("10.0.0.1", 2222) == 2
    assert known.forget("10.0.0.1", 2222) == 0
    text = known.path.read_text()
    assert "# kept comment" in text
    assert known.check("10.0.0.2", 2222, A) is HostKeyStatus.TRUSTED


def test_entries_show_fingerprints_and_labels() -> None:
    known = KnownHosts()
    known.add("10.0.0.1", 2222, A)
    known.add("10.0.0.9", 22, B)
    entries = known.entries([("10.0.0.1", 2222)])
    assert [e.fingerprint for e in entries] == [keys.fingerprint(A), keys.fingerprint(B)]
    assert [e.shown_hosts for e in entries] == ["10.0.0.1:2222", "(hashed)"]
    assert entries[0].to_json()["labels"] == ["10.0.0.1:2222"]


def test_symlinked_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    os.symlink(target, paths.known_hosts_path())
    with pytest.raises(Exception, match="symbolic link"):
        KnownHosts().add("10.0.0.1", 22, A)
    assert target.read_text() == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host", ("host", 22)),
        ("host:2222", ("host", 2222)),
        ("[::1]:2222", ("::1", 2222)),
        ("::1", ("::1", 22)),
        ("[10.0.0.1]", ("10.0.0.1", 22)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["", "host:abc", "host:0", "host:70000", "[::1", "a b", "*"])
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_host_port(text)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", "hosts", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_hosts_list_and_forget(isolated_env: IsolatedEnv) -> None:
    import json

    empty = _cli("list")
    assert empty.returncode == 0 and "no trusted host keys yet" in empty.stdout
    known = KnownHosts()
    known.add("10.0.0.1", 2222, A)
    _user_file(isolated_env, f"[10.0.0.1]:2222 {A}\n")

    listed = _cli("list")
    assert listed.returncode == 0
    assert keys.fingerprint(A) in listed.stdout and "ssh-ed25519" in listed.stdout
    as_json = json.loads(_cli("list", "--json").stdout)
    assert [e["fingerprint"] for e in as_json] == [keys.fingerprint(A)]
    assert as_json[0]["hashed"] is True
    assert len(json.loads(_cli("list", "--json", "--all").stdout)) == 2

    forgot = _cli("forget", "10.0.0.1:2222")
    assert forgot.returncode == 0
    assert forgot.stdout.strip() == "forgot 1 host key of 10.0.0.1:2222"
    assert "~/.ssh/known_hosts also trusts 10.0.0.1:2222" in forgot.stderr
    assert "ssh-keygen -R '[10.0.0.1]:2222'" in forgot.stderr
    again = _cli("forget", "10.0.0.1:2222", "--json")
    assert json.loads(again.stdout) == {
        "host": "10.0.0.1",
        "port": 2222,
        "removed": 0,
        "in_user_known_hosts": True,
    }
    nothing = _cli("forget", "10.9.9.9")
    assert nothing.returncode == 0 and "nothing to forget" in nothing.stdout


def test_cli_hosts_forget_bad_input_exits_2() -> None:
    bad = _cli("forget", "host:notaport")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: port is not a number")


def test_cli_hosts_list_names_the_connections() -> None:
    import json
    from datetime import UTC, datetime

    from tunnel_tui.core import config
    from tunnel_tui.core.model import Connection, Key, KeyType
    from tunnel_tui.core.urls import parse_db_url, parse_ssh_url

    material = keys.generate()
    key = Key(
        id="k1",
        name="main",
        type=KeyType.ED25519,
        public_key=material.public_line,
        fingerprint=material.fingerprint,
        created=datetime.now(UTC),
        comment="",
    )
    with config.update() as cfg:
        cfg.keys[key.id] = key
        cfg.connections["prod"] = Connection(
            name="prod",
            database=parse_db_url("postgresql://app@db.internal:5432/appdb"),
            bastion=parse_ssh_url("ssh://tunnel@10.0.0.1:2222"),
            key_id=key.id,
        )
    KnownHosts().add("10.0.0.1", 2222, A)
    listed = json.loads(_cli("list", "--json").stdout)
    assert listed[0]["hosts"] == "10.0.0.1:2222"
    assert listed[0]["connections"] == ["prod"]
    assert "prod" in _cli("list").stdout


_hosts = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
    st.ip_addresses().map(str),
)


@settings(max_examples=60, deadline=None)
@given(host=_hosts, port=st.integers(1, 65535), other_port=st.integers(1, 65535))
def test_hashed_names_match_only_their_host_and_port(host: str, port: int, other_port: int) -> None:
    from tunnel_tui.core.known_hosts import _patterns_match, host_name

    hashed = hash_name(host_name(host, port))
    assert _patterns_match(hashed, host_name(host, port))
    if other_port != port:
        assert not _patterns_match(hashed, host_name(host, other_port))
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_host_port(shown) == (host, port)
