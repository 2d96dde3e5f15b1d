"""`add/edit/list/show/remove` as a user runs them: real subprocesses, a real Secret
Service; bad input is one line on stderr, exit 2, and the config file unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.paths import config_path

CANARY = "pw-canary-5d0b2e77"
DB = "postgresql://app@db.internal:5432/appdb?sslmode=require"
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

    run.env = env  # type: ignore[attr-defined]
    return run


def config_bytes() -> bytes:
    path = config_path()
    return path.read_bytes() if path.exists() else b""


def test_add_with_generated_key_prints_the_line_to_install(tt) -> None:
    out = tt("add", "prod", "--db", DB, "--ssh", SSH, "--local-port", "15432")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    public = next(line for line in lines if line.startswith("ssh-ed25519 "))
    assert public.endswith(" tunnel-tui:prod")
    assert (
        "Add this line to ~tunnel/.ssh/authorized_keys on bastion.example.com, "
        "then run: tunnel-tui validate prod"
    ) in lines
    assert lines[-1] == (
        "(For a line that allows only this tunnel: tunnel-tui key show prod --restricted)"
    )
    assert tt("key", "show", "prod").stdout.strip() == public

    listed = json.loads(tt("list", "--json").stdout)
    assert [c["name"] for c in listed] == ["prod"]
    conn = listed[0]
    assert conn["target"] == "db.internal:5432"
    assert conn["bastion"] == "tunnel@bastion.example.com:22"
    assert conn["database"]["options"] == {"sslmode": "require"}
    assert conn["local_port"] == 15432 and conn["local_host"] == "127.0.0.1"
    assert conn["key"]["name"] == "prod" and conn["key"]["fingerprint"].startswith("SHA256:")
    shown = json.loads(tt("show", "prod", "--json").stdout)
    assert shown == conn
    text = tt("show", "prod").stdout
    assert "db.internal:5432 (as the bastion sees it)" in text
    table = tt("list").stdout.splitlines()
    assert table[0].split() == ["NAME", "KIND", "TARGET", "BASTION", "LOCAL", "KEY"]
    assert table[1].split()[:2] == ["prod", "postgresql"]


def test_db_password_from_stdin_goes_to_the_keyring_only(tt) -> None:
    out = tt("add", "prod", "--db", DB, "--ssh", SSH, "--db-password-stdin", stdin=CANARY + "\n")
    assert out.returncode == 0, out.stderr
    assert Catalog().db_password("prod").reveal() == CANARY  # trailing newline stripped
    assert CANARY.encode() not in config_bytes()
    assert CANARY not in out.stdout + out.stderr


def test_bad_input_is_one_line_exit_2_and_changes_nothing(tt) -> None:
    assert tt("add", "prod", "--db", DB, "--ssh", SSH, "--local-port", "15432").returncode == 0
    before = config_bytes()
    cases = [
        (["add", "x", "--db", f"postgresql://app:{CANARY}@db/x", "--ssh", SSH], "password"),
        (["add", "x", "--db", "oracle://u@db/x", "--ssh", SSH], "unknown database scheme"),
        (["add", "x", "--db", DB, "--ssh", "ssh://bastion"], "SSH user is missing"),
        (["add", "x", "--db", "mysql://u@db:99999", "--ssh", SSH], "out of range"),
        (["add", "prod", "--db", DB, "--ssh", SSH], "already exists"),
        (["add", "x", "--db", DB, "--ssh", SSH, "--local-port", "15432"], "'prod'"),
        (["add", "x", "--db", DB, "--ssh", SSH, "--local-port", "0"], "out of range"),
        (["add", "x", "--db", DB, "--ssh", SSH, "--use-key", "nope"], "no key"),
        (["add", "x", "--db", DB, "--ssh", SSH, "--generate-key", "--use-key", "prod"], "exclude"),
        (["add", "x", "--db", DB, "--ssh", SSH, "--identity", "/nonexistent/k"], "cannot read"),
        (["add", "x", "--db", DB, "--ssh", SSH, "--db-password-stdin"], "no database password"),
        (["add", "bad name", "--db", DB, "--ssh", SSH], "invalid name"),
        (["edit", "nope", "--db", DB], "no connection named"),
        (["edit", "prod", "--ssh", "ssh://u@b:x"], "must be a number"),
        (["show", "nope"], "no connection named"),
        (["remove", "nope", "--yes"], "no connection named"),
    ]
    for args, words in cases:
        out = tt(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("error: "), (args, out.stderr)
        assert words in out.stderr.splitlines()[0], (args, out.stderr)
        assert len(out.stderr.splitlines()) <= 2, out.stderr  # the error, maybe a hint
        assert CANARY not in out.stderr + out.stdout
        assert out.stdout == ""
        assert config_bytes() == before, args


def test_missing_required_flag_is_a_usage_error(tt) -> None:
    out = tt("add", "x", "--db", DB)
    assert out.returncode == 2
    assert "--ssh" in out.stderr


def test_identity_import_with_passphrase_and_password_on_stdin(tt, keyfiles) -> None:
    kf = keyfiles.good["rsa-pkcs8-enc"]
    wrong = tt(
        "add",
        "x",
        "--db",
        DB,
        "--ssh",
        SSH,
        "--identity",
        str(kf.path),
        "--passphrase-stdin",
        stdin="not it\n",
    )
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr
    assert config_bytes() == b""

    out = tt(
        "add",
        "prod",
        "--db",
        DB,
        "--ssh",
        SSH,
        "--identity",
        str(kf.path),
        "--passphrase-stdin",
        "--db-password-stdin",
        "--json",
        stdin=f"{kf.passphrase}\n{CANARY}\n",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["key_created"] and not result["key_generated"]
    assert result["authorized_keys_line"].split()[:2] == kf.public_line.split()[:2]
    catalog = Catalog()
    assert catalog.db_password("prod").reveal() == CANARY
    assert "ENCRYPTED" not in catalog.private_key(result["key"]["id"]).reveal()


def test_world_readable_identity_warns_like_openssh(tt, keyfiles, isolated_env) -> None:
    kf = keyfiles.good["ed25519-openssh"]
    loose = isolated_env.root / "loose_key"
    loose.write_bytes(kf.read())
    os.chmod(loose, 0o644)
    out = tt("add", "prod", "--db", DB, "--ssh", SSH, "--identity", str(loose))
    assert out.returncode == 0, out.stderr
    assert "WARNING: UNPROTECTED PRIVATE KEY FILE!" in out.stderr
    assert "0644" in out.stderr


def test_encrypted_identity_without_terminal_or_stdin_flag(tt, keyfiles) -> None:
    kf = keyfiles.good["ed25519-openssh-enc"]
    out = tt("add", "x", "--db", DB, "--ssh", SSH, "--identity", str(kf.path))
    assert out.returncode == 2
    assert "--passphrase-stdin" in out.stderr
    assert config_bytes() == b""


def test_edit_and_remove(tt) -> None:
    assert tt("add", "prod", "--db", DB, "--ssh", SSH).returncode == 0
    assert tt("add", "ro", "--db", DB, "--ssh", SSH, "--use-key", "prod").returncode == 0
    out = tt("edit", "ro", "--db", "mysql://reader@maria.internal/shop", "--local-port", "13306")
    assert out.returncode == 0, out.stderr
    out = tt("edit", "ro", "--rename", "reader")
    assert out.returncode == 0, out.stderr
    assert "now reader" in out.stdout
    conn = json.loads(tt("show", "reader", "--json").stdout)
    assert conn["target"] == "maria.internal:3306" and conn["local_port"] == 13306
    assert conn["key"]["name"] == "prod"

    out = tt("remove", "reader", "--json")
    assert out.returncode == 0, out.stderr
    removed = json.loads(out.stdout)
    assert removed["deleted_keys"] == []
    assert list(removed["kept_keys"].values()) == [["prod"]]
    out = tt("remove", "prod")
    assert out.returncode == 0
    assert "Deleted key prod" in out.stdout
    assert json.loads(tt("list", "--json").stdout) == []
    assert json.loads(tt("key", "list", "--json").stdout) == []


def test_no_usable_keyring_fails_cleanly_and_writes_nothing(isolated_env) -> None:
    """No D-Bus session and the vault fallback forbidden: exit 1, one clear error,
    no config written; list still works (it never needs the keyring)."""
    env = dict(os.environ, TUNNEL_TUI_SECRETS="keyring")
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tunnel_tui", *args],
            input="",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    out = run("add", "prod", "--db", DB, "--ssh", SSH)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr
    assert not config_path().exists()
    listed = run("list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


# --- remove: the key's line leaves the bastion too (real OpenSSH sshd) -----------------


def _add_on(tt, sshd, name: str, *extra: str) -> str:
    """A connection through the real sshd whose key is authorized there and whose host
    key we trust; returns the public key line (with its comment)."""
    from tunnel_tui.core.known_hosts import KnownHosts

    ssh = f"ssh://{sshd.user}@{sshd.host}:{sshd.port}"
    out = tt("add", name, "--db", "postgresql://app@127.0.0.1:5432/appdb", "--ssh", ssh, *extra)
    assert out.returncode == 0, out.stderr
    if "--use-key" not in extra:  # a new key: where to install it names the port
        assert f"authorized_keys on {sshd.host}:{sshd.port}, then run" in out.stdout
    line = tt("key", "show", name).stdout.strip()
    KnownHosts().add(sshd.host, sshd.port, sshd.host_public_key)
    return line


def test_remove_yes_takes_the_key_line_off_the_bastion(tt, sshd_factory) -> None:
    server = sshd_factory(strict_modes=True)
    server.authorize("# ops: keep this comment")
    from tunnel_tui.core.keys import generate

    other = generate().public_line + " alice@laptop"
    server.authorize(other, 'restrict,port-forwarding,permitopen="db:5432"')
    line = _add_on(tt, server, "prod")
    server.authorize(line, "restrict,port-forwarding")
    before = server.authorized_keys_path.read_text()

    out = tt("remove", "prod", "--yes")

    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert f"Removed its line from ~{server.user}/.ssh/authorized_keys on 127.0.0.1:" in out.stdout
    after = server.authorized_keys_path.read_text()
    assert line.split()[1] not in after
    assert after == "".join(x for x in before.splitlines(True) if line.split()[1] not in x)
    assert json.loads(tt("key", "list", "--json").stdout) == []


def test_remove_keep_remote_and_shared_keys_leave_the_bastion_alone(tt, sshd_factory) -> None:
    server = sshd_factory()
    line = _add_on(tt, server, "prod")
    _add_on(tt, server, "replica", "--use-key", "prod", "--local-port", "15433")
    server.authorize(line)
    before = server.authorized_keys_path.read_text()

    out = tt("remove", "replica", "--yes", "--json")  # the key stays: prod still uses it
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["remote"] == []
    out = tt("remove", "prod", "--yes", "--keep-remote", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["remote"] == [] and len(result["deleted_keys"]) == 1
    assert server.authorized_keys_path.read_text() == before


def test_remove_with_the_bastion_down_warns_and_still_removes_locally(tt, sshd_factory) -> None:
    server = sshd_factory()
    line = _add_on(tt, server, "prod")
    server.authorize(line)
    server.stop()

    out = tt("remove", "prod", "--yes", "--json")

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    (remote,) = result["remote"]
    assert remote["removed"] is False and remote["error"]
    assert out.stderr.startswith("warning: could not remove the line of key prod from ~")
    assert len(out.stderr.splitlines()) == 1
    assert json.loads(tt("list", "--json").stdout) == []
    assert json.loads(tt("key", "list", "--json").stdout) == []
    out = tt("add", "again", "--db", DB, "--ssh", SSH)
    assert out.returncode == 0
    plain = tt("remove", "again")  # no terminal, no --yes: never touches a bastion
    assert "Its line may remain in ~tunnel/.ssh/authorized_keys on bastion.example.com:22" in (
        plain.stdout
    )


def test_remove_during_an_interrupted_rotation_leaves_no_key_behind(tt, sshd_factory) -> None:
    """A rotation killed after installing its new key, then `remove --yes`: both keys
    leave the keyring and the bastion, and the rotation record goes too."""
    server = sshd_factory()
    line = _add_on(tt, server, "prod")
    server.authorize(line)
    crashed = subprocess.run(
        [sys.executable, "-m", "tunnel_tui", "rotate-key", "prod"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**tt.env, "TUNNEL_TUI_TEST_CRASH_AFTER": "installed"},
    )
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    keys_before = json.loads(tt("key", "list", "--json").stdout)
    assert len(keys_before) == 2
    assert len(server.authorized_keys_path.read_text().splitlines()) == 2

    out = tt("remove", "prod", "--yes", "--json")

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert sorted(result["deleted_keys"]) == sorted(k["id"] for k in keys_before)
    assert [r["removed"] for r in result["remote"]] == [True, True]
    assert server.authorized_keys_path.read_text() == ""
    assert json.loads(tt("key", "list", "--json").stdout) == []
    assert Catalog().rotations() == {}


def _on_a_terminal(env: dict[str, str], args: list[str], answers: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin (so it asks), feeding `answers`."""
    import pty

    primary, secondary = pty.openpty()
    env = {k: v for k, v in env.items() if k != "CI"}  # CI never asks
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunnel_tui", *args],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.close(secondary)
        os.write(primary, answers.encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(primary)
    return proc.returncode, out + err


def test_remove_on_a_terminal_asks_before_touching_the_bastion(tt, sshd_factory) -> None:
    server = sshd_factory()
    line = _add_on(tt, server, "keep")
    _add_on(tt, server, "drop", "--local-port", "15499")
    dropped = tt("key", "show", "drop").stdout.strip()
    server.authorize(line)
    server.authorize(dropped)

    code, text = _on_a_terminal(tt.env, ["remove", "keep"], "y\nn\n")
    assert code == 0, text
    assert "Also remove its key's line from ~" in text
    assert "Its line may remain in" in text
    assert line.split()[1] in server.authorized_keys_path.read_text()  # said no

    code, text = _on_a_terminal(tt.env, ["remove", "drop"], "y\n\n")  # default: yes
    assert code == 0, text
    assert "Removed its line from" in text
    assert dropped.split()[1] not in server.authorized_keys_path.read_text()

    _add_on(tt, server, "again")
    code, text = _on_a_terminal(tt.env, ["remove", "again"], "n\n")
    assert code == 1 and "nothing removed" in text  # issue 19 item 12: not 130
    assert [c["name"] for c in json.loads(tt("list", "--json").stdout)] == ["again"]


def test_edit_to_a_new_key_says_the_old_one_is_unused(tt) -> None:
    assert tt("add", "prod", "--db", DB, "--ssh", SSH).returncode == 0
    out = tt("edit", "prod", "--generate-key")
    assert out.returncode == 0, out.stderr
    assert (
        "Key prod is no longer used; once its line is off the bastion: tunnel-tui key delete "
        "prod (rotate-key does all this without downtime)"
    ) in out.stdout.splitlines()
    keys = {k["name"]: k["used_by"] for k in json.loads(tt("key", "list", "--json").stdout)}
    assert keys == {"prod": [], "prod-2": ["prod"]}


def test_remove_through_a_jump_host_cleans_both_servers(tt, sshd_factory) -> None:
    from tunnel_tui.core.known_hosts import KnownHosts

    jump, bastion = sshd_factory(), sshd_factory()
    out = tt(
        "add", "prod", "--db", "postgresql://app@127.0.0.1:5432/appdb",
        "--ssh", f"ssh://{bastion.user}@{bastion.host}:{bastion.port}",
        "--jump", f"ssh://{jump.user}@{jump.host}:{jump.port}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = tt("key", "show", "prod").stdout.strip()
    for server in (jump, bastion):
        KnownHosts().add(server.host, server.port, server.host_public_key)
        server.authorize(line)

    out = tt("remove", "prod", "--yes", "--json")

    assert out.returncode == 0, out.stderr
    remote = json.loads(out.stdout)["remote"]
    assert sorted(r["server"] for r in remote if r["removed"]) == sorted(
        f"{s.user}@127.0.0.1:{s.port}" for s in (jump, bastion)
    )
    for server in (jump, bastion):
        assert line.split()[1] not in server.authorized_keys_path.read_text()
