"""The command line with a key that lives in the user's ssh-agent: rotation is refused
(exit 2, nothing written) because we do not own the key; `key show` still prints its
public line, ready for authorized_keys; `key list` says where it lives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_certificates import sk_ed25519_line
from tests.core.test_ssh_agent_catalog import NoKeyring
from tests.fixtures.ssh_agent import keygen
from tunnel_tui.core import paths
from tunnel_tui.core.catalog import AgentKeyChoice, Catalog
from tunnel_tui.core.keys import fingerprint, public_key_only

DB = "postgresql://app@db.internal:5432/app"
SSH = "ssh://tunnel@bastion.example:22"


def tt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunnel_tui", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def agent_public(key_file) -> str:
    return key_file[1]


def test_rotation_of_an_agent_key_is_refused_and_key_show_still_prints_it(agent_public):
    Catalog(secrets=NoKeyring()).add("prod", DB, SSH, key=AgentKeyChoice(agent_public))
    before = paths.config_path().read_bytes()

    refused = tt("rotate-key", "prod")
    assert refused.returncode == 2, refused.stderr
    assert "lives in your ssh-agent" in refused.stderr and "does not own" in refused.stderr
    assert "--ssh-agent" in refused.stderr
    assert paths.config_path().read_bytes() == before

    shown = tt("key", "show", "prod")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{agent_public} tunnel-tui:prod"


def test_sk_key_line_is_shown_and_listed_correctly():
    line = sk_ed25519_line()
    Catalog(secrets=NoKeyring()).add("yubi", DB, SSH, key=AgentKeyChoice(line))

    shown = tt("key", "show", "yubi")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{public_key_only(line)} tunnel-tui:yubi"
    listed = json.loads(tt("key", "list", "--json").stdout)
    assert [(k["type"], k["source"], k["fingerprint"]) for k in listed] == [
        ("sk-ed25519", "ssh-agent", fingerprint(line))]
    text = tt("key", "list").stdout
    assert "sk-ed25519" in text and "ssh-agent" in text


def test_validate_with_an_agent_certificate_warns_then_fails_when_emptied(
    sshd_factory, user_ca, postgres, ssh_agent, key_file, secret_service,
):
    """`tunnel-tui validate --json` from a terminal whose ssh-agent holds the key and a
    certificate expiring within the hour: every step ok, exit 0, the keyring step's hint
    warns; after `ssh-add -D`: exit 1 at `keyring`, the hint naming ssh-add."""
    from tests.agent.test_agent_tunnels import trust_host
    from tunnel_tui.core.secret import Secret

    server = sshd_factory({"TrustedUserCAKeys": str(user_ca.public_path)})
    trust_host(server)
    path, public = key_file
    user_ca.sign(path.with_name(path.name + ".pub"), [server.user], "-5m:+50m")
    ssh_agent.add(path)  # the key and its certificate
    Catalog().add(
        "certs",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://{server.user}@{server.host}:{server.port}",
        key=AgentKeyChoice(public), db_password=Secret(postgres.password),
    )
    env = {**secret_service.env, "SSH_AUTH_SOCK": ssh_agent.socket}

    ok = tt("validate", "certs", "--json", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    rows = {r["step"]: r for r in map(json.loads, ok.stdout.splitlines())}
    assert all(r["status"] == "ok" for r in rows.values()), rows
    assert "ssh-agent" in rows["keyring"]["detail"] and server.user in rows["keyring"]["detail"]
    assert "expires soon" in rows["keyring"]["hint"]

    ssh_agent.delete_all()
    failed = tt("validate", "certs", "--json", env=env)
    assert failed.returncode == 1
    rows = {r["step"]: r for r in map(json.loads, failed.stdout.splitlines())}
    assert rows["keyring"]["status"] == "fail" and "ssh-add" in rows["keyring"]["hint"]
    assert rows["ssh-auth"]["status"] == "skip"


def no_keyring(socket: str) -> dict[str, str]:
    """An SSH login with only its ssh-agent: no D-Bus, no keyring backend at all."""
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    return {**env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "SSH_AUTH_SOCK": socket}


def test_add_ssh_agent_lists_several_keys_then_picks_by_fingerprint(
    ssh_agent, isolated_env, user_ca,
):
    keydir = Path(isolated_env.root) / "k"
    keydir.mkdir(mode=0o700)
    laptop = keygen(keydir / "laptop", "me@laptop")
    yubi = keygen(keydir / "yubi", "my yubikey")
    ssh_agent.add(keydir / "laptop")
    ssh_agent.add(keydir / "yubi")
    env = no_keyring(ssh_agent.socket)

    several = tt("add", "prod", "--db", DB, "--ssh", SSH, "--ssh-agent", env=env)
    assert several.returncode == 2, several.stderr
    for public, comment in ((laptop, "me@laptop"), (yubi, "my yubikey")):
        assert f"{fingerprint(public)} ssh-ed25519 {comment}" in several.stderr
    assert "--key-fingerprint" in several.stderr
    assert not paths.config_path().exists()  # nothing written

    wrong = tt("add", "prod", "--db", DB, "--ssh", SSH, "--key-fingerprint", "SHA256:x", env=env)
    assert wrong.returncode == 2 and "goes with --ssh-agent" in wrong.stderr
    made_now = tt("add", "prod", "--db", DB, "--ssh", SSH, "--certificate", "x-cert.pub", env=env)
    assert made_now.returncode == 2 and "no certificate yet" in made_now.stderr

    added = tt("add", "prod", "--db", DB, "--ssh", SSH, "--ssh-agent",
               "--key-fingerprint", fingerprint(yubi), "--json", env=env)
    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert data["key"]["source"] == "ssh-agent"
    assert data["key"]["fingerprint"] == fingerprint(yubi)
    assert data["authorized_keys_line"] == f"{yubi} tunnel-tui:prod"
    assert "PRIVATE" not in paths.config_path().read_text()

    # A certificate for the key, imported next to it: show names principals and validity.
    cert = user_ca.sign(keydir / "yubi.pub", ["tunnel", "dba"], "-5m:+3h")
    edited = tt("edit", "prod", "--certificate", str(cert), env=env)
    assert edited.returncode == 0, edited.stderr
    assert "certificate for tunnel, dba" in edited.stdout
    shown = tt("show", "prod", env=env).stdout
    assert "lives in your ssh-agent" in shown
    assert "certificate for tunnel, dba, valid" in shown and "expires in" in shown
    other = user_ca.sign(keydir / "laptop.pub", ["tunnel"], "+1d")
    mismatch = tt("edit", "prod", "--certificate", str(other), env=env)
    assert mismatch.returncode == 2 and "another key" in mismatch.stderr


def test_remove_leaves_the_agent_keys_line_on_the_bastion(sshd, agent_public, secret_service):
    """The key is the user's own (from their ssh-agent): removing the connection never
    logs in to delete its authorized_keys line, which may serve them elsewhere."""
    sshd.authorize(agent_public)
    Catalog().add("prod", DB, f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
                  key=AgentKeyChoice(agent_public))
    removed = tt("remove", "prod", "--yes", "--json", env=secret_service.env)
    assert removed.returncode == 0, removed.stderr
    data = json.loads(removed.stdout)
    assert data["remote"] == [] and data["deleted_keys"]
    assert agent_public in sshd.authorized_keys_path.read_text()
