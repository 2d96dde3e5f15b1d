"""The agent across upgrades and crashes: an older running agent is named with the one
command that fixes it, `agent restart` says which tunnels go down and starts this
version's agent, and the agent (which holds private keys) never writes a core file."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.agent.test_agent_tunnels import Setup, cli, pg_setup, refused, up  # noqa: F401
from tests.fixtures.agent import pid_alive, start_agent_process, start_old_agent, stop_pid
from tunnel_tui.agent import protocol
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core.catalog import Catalog


def test_an_older_agent_is_named_and_restart_replaces_it(
    secret_service: Any, agent_reaper: None
) -> None:
    Catalog().add("a", "postgresql://app@10.0.0.5:5432/app", "ssh://tunnel@192.0.2.1:22")
    home = Path(os.environ["TUNNEL_TUI_HOME"])
    old = start_old_agent(home)
    try:
        for command in (["up", "a"], ["status"], ["vault", "status"]):
            result = cli(*command)
            assert result.returncode == 1, (command, result.stderr)
            assert result.stderr == (
                "error: the running agent is older (protocol 1; this tunnel-tui speaks "
                f"{protocol.VERSION})\nhint: tunnel-tui agent restart\n"
            ), command

        restarted = cli("agent", "restart")
        assert restarted.returncode == 0, restarted.stderr
        lines = restarted.stdout.splitlines()
        assert lines[0] == "taking down: a (bring them up again with `up`)"
        new_pid = AgentClient().ping()["pid"]
        assert lines[1] == f"agent {old.pid} stopped; agent {new_pid} started"
        assert old.wait(10) == 0
        assert AgentClient().ping()["protocol"] == protocol.VERSION
    finally:
        if old.poll() is None:
            old.kill()
            old.wait(5)


def test_restart_says_which_tunnels_go_down_first(pg_setup: Setup) -> None:  # noqa: F811
    port = up("pg")
    old_pid = AgentClient().ping()["pid"]
    restarted = cli("agent", "restart")
    assert restarted.returncode == 0, restarted.stderr
    new_pid = AgentClient().ping()["pid"]
    assert restarted.stdout.splitlines() == [
        "taking down: pg (bring them up again with `up`)",
        f"agent {old_pid} stopped; agent {new_pid} started",
    ]
    assert new_pid != old_pid and not pid_alive(old_pid)
    assert refused(port)
    assert up("pg") == port

    alone = cli("agent", "stop")  # says which tunnels close with it, as restart does
    assert alone.returncode == 0 and alone.stdout.splitlines() == [
        "taking down: pg (bring them up again with `up`)", f"agent {new_pid} stopping"]
    fresh = cli("agent", "restart")  # nothing running: just starts one
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout == f"agent {AgentClient().ping()['pid']} started\n"


def _core_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError("no core limit line")


def test_the_agent_cannot_dump_core(isolated_env: Any) -> None:
    # Start it from a parent that allows core files, so the limit we read is the agent's.
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    allowed = hard if hard != 0 else soft
    resource.setrlimit(resource.RLIMIT_CORE, (allowed, hard))
    try:
        agent = start_agent_process(Path(os.environ["TUNNEL_TUI_HOME"]))
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    try:
        assert _core_limit(agent.pid) == ("0", "0")
    finally:
        agent.stop()


def test_disabling_core_dumps_also_makes_the_process_not_dumpable() -> None:
    # PR_GET_DUMPABLE can only be asked by the process itself (and root reads any
    # /proc file, so file ownership proves nothing here): ask in a child.
    probe = (
        "import ctypes, resource\n"
        "from tunnel_tui.agent.daemon import disable_core_dumps\n"
        "libc = ctypes.CDLL(None)\n"
        "before = libc.prctl(3, 0, 0, 0, 0)\n"  # PR_GET_DUMPABLE
        "disable_core_dumps()\n"
        "print(before, libc.prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=2) == ["1", "0", "(0, 0)\n"]


def test_agent_stop_reaches_an_older_agent(isolated_env: Any) -> None:
    """`agent stop` reaches an older agent too (its shutdown has the same shape)."""
    home = Path(os.environ["TUNNEL_TUI_HOME"])
    old = start_old_agent(home)
    try:
        result = cli("agent", "stop")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [  # its one tunnel, then the stop
            "taking down: a (bring them up again with `up`)", f"agent {old.pid} stopping"]
        assert old.wait(10) == 0
    finally:
        if old.poll() is None:
            stop_pid(old.pid)
            old.wait(5)


def test_stop_and_restart_say_the_vault_they_held_is_locked_again(
    isolated_env: Any, agent_reaper: None
) -> None:
    from tests.agent.test_agent_keywork import PASSPHRASE, ssh_login_env

    env = ssh_login_env()
    unlock = ("vault", "unlock", "--passphrase-stdin")
    assert cli(*unlock, env=env, stdin=PASSPHRASE + "\n").returncode == 0
    old_pid = AgentClient().ping()["pid"]
    restarted = cli("agent", "restart", env=env)
    assert restarted.returncode == 0, restarted.stderr
    new_pid = AgentClient().ping()["pid"]
    assert restarted.stdout.splitlines() == [
        f"agent {old_pid} stopped; agent {new_pid} started",
        "the vault it held is locked again: tunnel-tui vault unlock",
    ]
    assert AgentClient().vault_status()["unlocked"] is False

    assert cli(*unlock, env=env, stdin=PASSPHRASE + "\n").returncode == 0
    stopped = cli("agent", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == [
        f"agent {new_pid} stopping",
        "the vault it held is locked again: tunnel-tui vault unlock",
    ]
    stop_pid(new_pid)
    relaunched = cli("agent", "restart", env=env)  # held no vault: no such line
    assert relaunched.stdout == f"agent {AgentClient().ping()['pid']} started\n"
