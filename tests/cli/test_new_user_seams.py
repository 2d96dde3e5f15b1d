"""Seams a new user met going through the README's walkthroughs with the real CLI: a
real OpenSSH bastion, the real agent (started by the commands, stopped by PID)."""

from __future__ import annotations

from typing import Any

from tests.agent.test_agent_tunnels import cli, no_keyring_env
from tests.fixtures.sshd import fingerprint
from tunnel_tui.core.known_hosts import KnownHosts


def test_add_accept_host_key_with_the_vault_held_by_the_agent(sshd: Any,
                                                              agent_reaper: None) -> None:
    """An SSH login: no keyring, the vault unlocked in the agent. add --accept-host-key
    meets the bastion's host key (decided before auth: our key is not needed) and says
    what it added, instead of failing on the key it cannot read here."""
    env = no_keyring_env()
    env.pop("TUNNEL_TUI_SECRETS", None)
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin="tr0ub4dor&3\n").returncode == 0
    added = cli("add", "pg", "--db", "postgresql://app@10.0.0.5:5432/app",
                "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
                "--accept-host-key", fingerprint(sshd.host_public_key), env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("Added pg: PostgreSQL 10.0.0.5:5432")
    assert "matches what you gave: saved" in added.stdout
    assert KnownHosts().trusted_keys(sshd.host, sshd.port)


def test_import_with_the_vault_held_by_the_agent(agent_reaper: None, tmp_path: Any) -> None:
    """Like add, import stores its new keys through the vault the agent holds (it said
    'the vault is locked' right after `vault unlock`)."""
    env = no_keyring_env()
    env.pop("TUNNEL_TUI_SECRETS", None)
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin="tr0ub4dor&3\n").returncode == 0
    exported = tmp_path / "team.toml"
    exported.write_text('version = 1\n\n[[connection]]\nname = "pg"\n'
                        'db = "postgresql://app@10.0.0.5:5432/app"\n'
                        'ssh = "ssh://tunnel@bastion.example.com"\nkey = "team"\n')
    imported = cli("import", str(exported), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 connection(s): pg" in imported.stdout
    shown = cli("key", "show", "pg", env=env)
    assert shown.returncode == 0 and shown.stdout.startswith("ssh-ed25519 ")


def test_add_says_why_a_bastion_was_not_reached(secret_service: Any) -> None:
    """add --accept-new-host-key to a bastion nothing answers on: the reason (refused),
    not 'log in works after the key is installed'."""
    from tests.fixtures.ports import free_port

    port = free_port()
    added = cli("add", "pg", "--db", "postgresql://app@10.0.0.5:5432/app",
                "--ssh", f"ssh://tunnel@127.0.0.1:{port}", "--accept-new-host-key")
    assert added.returncode == 0, added.stderr
    assert (f"Host key of bastion tunnel@127.0.0.1:{port}: not reached: cannot connect: "
            "connection refused") in added.stdout.splitlines()


def test_the_readme_command_list_names_every_command() -> None:
    """The README's command list is where a new user looks: every command and every
    subcommand of a group is in it (it had lost agent restart|stop, service, vault
    status, key show)."""
    import re
    from pathlib import Path

    import click

    from tunnel_tui.cli import COMMANDS
    from tunnel_tui.cli import cli as group

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## The command line", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    words = set(re.findall(r"[a-z][a-z-]*", block))
    ctx = click.Context(group)
    missing = []
    for name in COMMANDS:
        if name == "demo":
            continue  # in the Quick start
        command = group.get_command(ctx, name)
        if name not in words:
            missing.append(name)
        if isinstance(command, click.Group):
            missing += [f"{name} {sub}" for sub in command.commands if sub not in words]
    assert not missing


def test_import_of_a_missing_or_binary_file_is_one_clear_line(isolated_env: Any,
                                                              tmp_path: Any) -> None:
    missing = cli("import", str(tmp_path / "team.toml"))
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[0] == (
        f"error: cannot read {tmp_path / 'team.toml'}: No such file or directory")
    binary = tmp_path / "team.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    refused = cli("import", str(binary))
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[0] == f"error: cannot read {binary}: it is not UTF-8 text"


def test_remove_says_where_the_key_went(key_file: Any, secret_service: Any) -> None:
    """An ssh-agent key is the user's: remove forgets our record of it and says so (it
    said 'Deleted key … from the keyring', where it never was)."""
    from tunnel_tui.core.catalog import AgentKeyChoice, Catalog

    Catalog().add("prod", "postgresql://app@db.internal:5432/app",
                  "ssh://tunnel@bastion.example.com", key=AgentKeyChoice(key_file[1]))
    removed = cli("remove", "prod", "--yes", env=secret_service.env)
    assert removed.returncode == 0, removed.stderr
    assert "it stays in your ssh-agent." in removed.stdout
    assert "keyring" not in removed.stdout


def test_key_list_says_the_keys_live_in_the_vault(agent_reaper: None) -> None:
    """No keyring: the keys went into the vault, and the SOURCE column says so (it said
    'keyring'); the JSON `source` keeps its documented value for scripts."""
    import json

    env = no_keyring_env()
    env.pop("TUNNEL_TUI_SECRETS", None)
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin="tr0ub4dor&3\n").returncode == 0
    generated = cli("key", "generate", "team", env=env)
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.splitlines()[0].endswith(" in the vault.")
    listed = cli("key", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[3] == "SOURCE" and row.split()[3] == "vault"
    assert "keyring" not in listed.stdout
    assert [k["source"] for k in json.loads(cli("key", "list", "--json", env=env).stdout)] \
        == ["keyring"]
    forced = cli("key", "list", env=dict(env, TUNNEL_TUI_SECRETS="vault"))
    assert forced.stdout.splitlines()[1].split()[3] == "vault", forced.stderr
