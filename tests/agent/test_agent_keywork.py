"""The vault only the agent holds (DESIGN.md, "Where a secret comes from", source 3):
an SSH login with no D-Bus, after `tunnel-tui vault unlock`, has no key it can read, and
the agent never hands one out — so the work that needs a key runs in the agent:
validate, rotation's SSH steps, `remove`'s bastion cleanup. Real CLI processes, a real OpenSSH
sshd and PostgreSQL behind it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import cli, no_keyring_env, pg_query, up_in
from tests.rotation.helpers import key_accepted
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core import keys as keys_mod
from tunnel_tui.core import paths
from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.model import KeyType
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import VALIDATION_STEPS
from tunnel_tui.rotation import CRASH_HOOK_ENV

PASSPHRASE = "tr0ub4dor&3"
ROTATION_STEPS = ["check", "generate", "store", "install", "verify", "switch", "remove-old",
                  "cleanup"]


def ssh_login_env() -> dict[str, str]:
    """A plain SSH login: no D-Bus session, so no keyring; the vault is the store."""
    env = no_keyring_env()
    env.pop("TUNNEL_TUI_SECRETS", None)
    env.pop("PYTHON_KEYRING_BACKEND", None)
    return env


def in_the_vault() -> Catalog:
    """The test reads the vault itself (it knows the passphrase); the CLI cannot."""
    return Catalog(vault_passphrase=Secret(PASSPHRASE))


def blob(public_line: str) -> str:
    return public_line.split()[1]


def test_rotate_and_remove_run_in_the_agent_that_holds_the_vault(
    sshd: Any, postgres: Any, agent_reaper: None
) -> None:
    env = ssh_login_env()
    db_url = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    ssh_url = f"ssh://{sshd.user}@{sshd.host}:{sshd.port}"
    unlocked = cli("vault", "unlock", "--passphrase-stdin", env=env, stdin=PASSPHRASE + "\n")
    assert unlocked.returncode == 0, unlocked.stderr
    added = cli(
        "add", "pg", "--db", db_url, "--ssh", ssh_url, "--db-password-stdin",
        env=env, stdin=postgres.password + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    sshd.authorize(cli("key", "show", "pg", env=env).stdout.strip())

    # validate: the agent runs the check with the key of its vault and streams the rows.
    checked = cli("validate", "pg", "--json", "--accept-new-host-key", env=env, stdin="")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    steps = [json.loads(line) for line in checked.stdout.splitlines()]
    assert [(s["step"], s["status"]) for s in steps] == [
        (step, "ok") for step in VALIDATION_STEPS
    ], steps
    # Overwriting an entry the agent's vault holds (it never hands the old one back).
    edited = cli("edit", "pg", "--db-password-stdin", env=env, stdin=postgres.password + "\n")
    assert edited.returncode == 0, edited.stderr
    assert in_the_vault().db_password("pg") == Secret(postgres.password)
    port = up_in("pg", env)  # the host key validate trusted (in the agent) is saved
    old = in_the_vault().key(in_the_vault().get("pg").key_id)

    # rotate-key: generated here, stored through the agent (write-only), every SSH
    # step run by the agent with the keys of its vault; the live tunnel moves over.
    rotated = cli("rotate-key", "pg", "--json", env=env, stdin="", timeout=120)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    rows = [json.loads(line) for line in rotated.stdout.splitlines()]
    assert [row["step"] for row in rows] == ROTATION_STEPS
    assert all(row["status"] == "ok" for row in rows), rows
    assert "live tunnels moved: pg" in rows[ROTATION_STEPS.index("switch")]["detail"]
    vault = in_the_vault()
    new = vault.key(vault.get("pg").key_id)
    assert new.id != old.id
    lines = sshd.authorized_keys_path.read_text()
    assert blob(new.public_key) in lines and blob(old.public_key) not in lines
    new_pem = vault.private_key(new.id).reveal()
    assert asyncio.run(key_accepted(sshd, new_pem))
    assert vault.store.get(f"key:{old.id}") is None  # cleanup deleted it in the vault
    assert asyncio.run(pg_query(port, postgres, "SELECT 8")) == 8  # the tunnel stayed up

    # remove with its bastion cleanup: the agent logs in one last time and takes the
    # line off, before the key leaves the vault.
    removed = cli("remove", "pg", "--yes", "--json", env=env, timeout=120)
    assert removed.returncode == 0, removed.stderr
    outcome = json.loads(removed.stdout)
    assert outcome["remote"] == [
        {"key": new.id, "server": f"{sshd.user}@{sshd.host}:{sshd.port}", "removed": True,
         "error": None}
    ]
    assert outcome["tunnel_was"] == "up" and outcome["warnings"] == []
    assert blob(new.public_key) not in sshd.authorized_keys_path.read_text()
    assert not asyncio.run(key_accepted(sshd, new_pem))
    assert in_the_vault().store.get(f"key:{new.id}") is None
    assert paths.vault_path().exists()


def test_key_work_adds_only_lines_of_this_homes_keys(
    sshd: Any, postgres: Any, agent_reaper: None
) -> None:
    """A client cannot have the agent put a key of its own on the bastion through the
    vault's keys: the line must be one of the config's keys (rotation's new key)."""
    env = ssh_login_env()
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin=PASSPHRASE + "\n").returncode == 0
    db_url = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    added = cli("add", "pg", "--db", db_url, "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
                env=env)
    assert added.returncode == 0, added.stderr
    sshd.authorize(cli("key", "show", "pg", env=env).stdout.strip())
    hop = {"host": sshd.host, "user": sshd.user, "port": sshd.port,
           "key_id": in_the_vault().get("pg").key_id}
    stranger = keys_mod.generate(KeyType.ED25519).public_line
    with pytest.raises(UsageError, match="must hold one of this home's keys"):
        AgentClient().call("key-work", action="add-line", hops=[hop], line=stranger)
    with pytest.raises(UsageError, match="a hop needs host, user, port"):
        AgentClient().call("key-work", action="login", hops=[{**hop, "port": 0}])
    assert blob(stranger) not in sshd.authorized_keys_path.read_text()
    # add --accept-new-host-key where nothing answers: the agent met the hops, and why
    # it could not reach the bastion comes back too.
    from tests.fixtures.ports import free_port

    port = free_port()
    nowhere = cli("add", "nowhere", "--db", db_url, "--ssh", f"ssh://tunnel@127.0.0.1:{port}",
                  "--accept-new-host-key", env=env)
    assert nowhere.returncode == 0, nowhere.stderr
    assert (f"Host key of bastion tunnel@127.0.0.1:{port}: not reached: cannot connect: "
            "connection refused") in nowhere.stdout.splitlines()
    # forward holds the tunnel in this process: it cannot, and says who can.
    held_here = cli("forward", "pg", env=env, timeout=30)
    assert held_here.returncode == 1
    assert held_here.stderr.endswith("hint: let the agent hold it: tunnel-tui up pg\n")


async def test_validate_in_the_agent_asks_this_terminal_about_an_unknown_host_key(
    sshd: Any, postgres: Any, agent_reaper: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs in the agent, the question about the bastion's host key is asked
    here (the CLI on its terminal, the TUI in its dialog) and the answer goes back."""
    from tunnel_tui.actions.validate import validate
    from tunnel_tui.commands.prompts import cli_session

    env = ssh_login_env()
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin=PASSPHRASE + "\n").returncode == 0
    db_url = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    added = cli(
        "add", "pg", "--db", db_url, "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        "--db-password-stdin", env=env, stdin=postgres.password + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    sshd.authorize(cli("key", "show", "pg", env=env).stdout.strip())
    for name in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND", "TUNNEL_TUI_SECRETS"):
        monkeypatch.delenv(name, raising=False)  # this process too: an SSH login
    asked: list[tuple[str, str]] = []

    async def answer(hop: str, fingerprint: str) -> bool:
        asked.append((hop, fingerprint))
        return True

    rows = [row async for row in validate(cli_session(), "pg", on_host_key=answer)]
    assert asked == [(f"{sshd.user}@{sshd.host}:{sshd.port}", sshd.host_fingerprint)]
    assert [(row.step, row.status.value) for row in rows] == [
        (step, "ok") for step in VALIDATION_STEPS
    ], rows
    # Trusted once, saved: the next check asks nothing.
    again = [row async for row in validate(cli_session(), "pg", on_host_key=answer)]
    assert len(asked) == 1 and all(row.ok for row in again)

    # A rename moves the stored database password along, inside the agent's vault.
    renamed = cli("edit", "pg", "--rename", "pg2", env=env)
    assert renamed.returncode == 0, renamed.stderr
    assert in_the_vault().db_password("pg2") == Secret(postgres.password)
    assert in_the_vault().store.get("db-password:pg") is None


def test_rollback_takes_the_new_line_off_through_the_agent(
    sshd: Any, postgres: Any, agent_reaper: None
) -> None:
    """A rotation killed after install, rolled back from the SSH login: the agent logs
    in with the old key of its vault and removes the new key's line."""
    env = ssh_login_env()
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin=PASSPHRASE + "\n").returncode == 0
    db_url = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    added = cli("add", "pg", "--db", db_url, "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
                "--accept-new-host-key", env=env)
    assert added.returncode == 0, added.stderr
    sshd.authorize(cli("key", "show", "pg", env=env).stdout.strip())
    old = in_the_vault().key(in_the_vault().get("pg").key_id)
    crashed = cli("rotate-key", "pg", env={**env, CRASH_HOOK_ENV: "installed"}, stdin="")
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    new = next(k for k in in_the_vault().keys() if k.id != old.id)
    assert blob(new.public_key) in sshd.authorized_keys_path.read_text()

    rolled = cli("rotate-key", "pg", "--rollback", env=env, stdin="")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "new line removed" in rolled.stdout
    lines = sshd.authorized_keys_path.read_text()
    assert blob(new.public_key) not in lines and blob(old.public_key) in lines
    assert [k.id for k in in_the_vault().keys()] == [old.id]


def test_through_a_jump_host_the_agent_meets_both_host_keys_and_cleans_both_servers(
    sshd_factory: Any, agent_reaper: None
) -> None:
    """Past the first hop only the key gets us: the agent logs in through the jump host
    with the key of its vault — to meet the bastion's host key at `add`, and to take
    the key's line off both servers at `remove`."""
    env = ssh_login_env()
    assert cli("vault", "unlock", "--passphrase-stdin", env=env,
               stdin=PASSPHRASE + "\n").returncode == 0
    jump, bastion = sshd_factory(), sshd_factory()
    assert cli("key", "generate", "prod", env=env).returncode == 0
    line = cli("key", "show", "prod", env=env).stdout.strip()
    for server in (jump, bastion):
        server.authorize(line)
    added = cli(
        "add", "prod", "--db", "postgresql://app@127.0.0.1:5432/appdb", "--use-key", "prod",
        "--ssh", f"ssh://{bastion.user}@{bastion.host}:{bastion.port}",
        "--jump", f"ssh://{jump.user}@{jump.host}:{jump.port}", "--accept-new-host-key",
        env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    trusted = [text for text in added.stdout.splitlines() if text.startswith("Host key of")]
    assert len(trusted) == 2 and all("not reached" not in text for text in trusted), trusted

    removed = cli("remove", "prod", "--yes", "--json", env=env, timeout=120)
    assert removed.returncode == 0, removed.stderr
    remote = json.loads(removed.stdout)["remote"]
    assert sorted(r["server"] for r in remote if r["removed"]) == sorted(
        f"{s.user}@127.0.0.1:{s.port}" for s in (jump, bastion)
    ), remote
    for server in (jump, bastion):
        assert blob(line) not in server.authorized_keys_path.read_text()
