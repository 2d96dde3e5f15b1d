"""`key show|list|generate|import|delete` in real subprocesses with a real Secret Service."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.paths import config_path

DB = "postgresql://app@db.internal:5432/appdb"
SSH = "ssh://tunnel@bastion.example.com:22"


@pytest.fixture
def tt(secret_service):
    env = dict(secret_service.env)
    env["TUNNEL_TUI_HOME"] = os.environ["TUNNEL_TUI_HOME"]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tunnel_tui", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    return run


def test_show_plain_and_restricted_lines(tt) -> None:
    assert tt("add", "prod", "--db", DB, "--ssh", SSH).returncode == 0
    assert (
        tt(
            "add", "mysql", "--db", "mysql://u@10.0.0.9:3307/x", "--ssh", SSH, "--use-key", "prod"
        ).returncode
        == 0
    )
    plain = tt("key", "show", "prod").stdout.strip()
    assert re.fullmatch(r"ssh-ed25519 AAAA[0-9A-Za-z+/=]+ tunnel-tui:prod", plain)
    restricted = tt("key", "show", "mysql", "--restricted").stdout.strip()
    assert restricted == (
        'restrict,port-forwarding,permitopen="10.0.0.9:3307",permitopen="db.internal:5432",'
        'command="/bin/false" ' + plain
    )
    by_key = tt("key", "show", "--key", "prod").stdout.strip()
    assert by_key == plain
    key_id = Catalog().key("prod").id
    assert tt("key", "show", key_id).stdout.strip() == plain


def test_list_generate_import_delete(tt, keyfiles) -> None:
    out = tt("key", "generate", "team", "--type", "rsa", "--json")
    assert out.returncode == 0, out.stderr
    team = json.loads(out.stdout)
    assert team["type"] == "rsa" and re.fullmatch(r"k-[0-9a-f]{8}", team["id"])
    assert team["authorized_keys_line"].startswith("ssh-rsa ")
    assert team["authorized_keys_line"].endswith(" tunnel-tui:team")

    kf = keyfiles.good["ecdsa-sec1-enc"]
    out = tt(
        "key", "import", "legacy", str(kf.path), "--passphrase-stdin", stdin=kf.passphrase + "\n"
    )
    assert out.returncode == 0, out.stderr
    assert kf.public_line.split()[1] in out.stdout

    assert tt("add", "prod", "--db", DB, "--ssh", SSH, "--use-key", "team").returncode == 0
    listed = json.loads(tt("key", "list", "--json").stdout)
    assert [(k["name"], k["used_by"]) for k in listed] == [("legacy", []), ("team", ["prod"])]
    assert set(listed[0]) == {
        "id",
        "name",
        "type",
        "public_key",
        "fingerprint",
        "created",
        "comment",
        "used_by",
        "source",
        "certificate",
    }
    assert listed[0]["source"] == "keyring" and listed[0]["certificate"] is None
    assert listed[0]["created"].endswith("Z")
    text = tt("key", "list").stdout
    assert "(unused)" in text and "prod" in text
    assert [line.split()[3] for line in text.splitlines()] == ["SOURCE", "keyring", "keyring"]

    before = config_path().read_bytes()
    refused = tt("key", "delete", "team")
    assert refused.returncode == 2
    assert "used by: prod" in refused.stderr
    assert config_path().read_bytes() == before

    out = tt("key", "delete", "legacy")
    assert out.returncode == 0, out.stderr
    assert [k["name"] for k in json.loads(tt("key", "list", "--json").stdout)] == ["team"]


def test_key_mistakes_exit_2(tt) -> None:
    assert tt("key", "generate", "team").returncode == 0
    before = config_path().read_bytes()
    for args, words in [
        (["key", "generate", "team"], "already exists"),
        (["key", "generate", "bad name"], "invalid name"),
        (["key", "show", "nope"], "no connection or key"),
        (["key", "show"], "which key"),
        (["key", "show", "team", "--restricted"], "not used by any connection"),
        (["key", "delete", "nope"], "no key"),
        (["key", "import", "x", "/nonexistent"], "cannot read"),
    ]:
        out = tt(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert words in out.stderr, (args, out.stderr)
        assert config_path().read_bytes() == before


def test_not_a_private_key_is_one_error_line_even_with_loose_permissions(
    tt, keyfiles, isolated_env
) -> None:
    """A .pub, a .ppk or garbage readable by others: one error (and its hint), not
    OpenSSH's 'UNPROTECTED PRIVATE KEY FILE' warning first; nothing stored."""
    kf = keyfiles.good["ed25519-openssh"]
    public = isolated_env.root / "id.pub"
    public.write_text(kf.public_line + " me@laptop\n")
    ppk = isolated_env.root / "id.ppk"
    ppk.write_text("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\n")
    junk = isolated_env.root / "notes.txt"
    junk.write_text("hello\n")
    for path, says in ((public, "public key"), (ppk, "puttygen"), (junk, "private key")):
        os.chmod(path, 0o644)
        out = tt("key", "import", "k", str(path))
        assert out.returncode == 2, out.stderr
        lines = out.stderr.splitlines()
        assert lines[0].startswith("error: ") and len(lines) <= 2, out.stderr
        assert says in out.stderr and "UNPROTECTED" not in out.stderr
    encrypted = keyfiles.good["ed25519-openssh-enc"]
    loose = isolated_env.root / "enc"
    loose.write_bytes(encrypted.read())
    os.chmod(loose, 0o644)
    out = tt("key", "import", "k", str(loose))  # no terminal, no --passphrase-stdin
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 2, out.stderr
    assert "--passphrase-stdin" in out.stderr and "UNPROTECTED" not in out.stderr
    assert json.loads(tt("key", "list", "--json").stdout) == []
