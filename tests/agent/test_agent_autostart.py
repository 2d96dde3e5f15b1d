"""Tunnels that are always there: a connection marked `autostart` comes up when the
agent starts — a real agent process, a real sshd bastion, real PostgreSQL — reading
its key from its own Secret Service (or sitting in `waiting-for-secret` with a hint
when it has none)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.agent.test_agent_tunnels import (
    add_ready_connection,
    cli,
    no_keyring_env,
    pg_query,
    status_of,
    wait_for_state,
)
from tests.fixtures.agent import start_agent_process
from tunnel_tui.core import paths
from tunnel_tui.core.catalog import Catalog, ImportKey


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNNEL_TUI_AUTOSTART_CAP", "0.5")


def add_autostart(name: str, sshd: Any, db: Any, keypair: Any) -> None:
    add_ready_connection(name, "postgresql", db, sshd, keypair, autostart=True)


def test_autostart_tunnels_come_up_when_the_agent_starts_and_after_a_restart(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    add_autostart("pg", sshd, postgres, client_keypair)
    Catalog().add(  # not marked: stays down
        "other",
        f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}",
        f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
        key=ImportKey(client_keypair.private_pem.encode()),
    )
    home = paths.home_dir()
    for round_ in (1, 2):  # the first start, then a restart
        agent = start_agent_process(home)
        try:
            up = wait_for_state("up")
            assert asyncio.run(pg_query(up["local_port"], postgres, "SELECT 1")) == 1
            assert status_of("other")["state"] == "down"
        finally:
            assert agent.stop() == 0, round_


def test_an_unreachable_bastion_is_retried_until_it_answers(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    add_autostart("pg", sshd, postgres, client_keypair)
    sshd.stop()
    agent = start_agent_process(paths.home_dir())
    try:
        retrying = wait_for_state("connecting", also=lambda s: s["last_error"])
        assert "keeps trying" in retrying["hint"]
        sshd.start()
        up = wait_for_state("up")
        assert asyncio.run(pg_query(up["local_port"], postgres, "SELECT 1")) == 1
    finally:
        agent.stop()


def test_no_secret_in_the_agent_waits_for_one_with_a_hint(
    sshd: Any, postgres: Any, client_keypair: Any, secret_service: Any, agent_reaper: None
) -> None:
    add_autostart("pg", sshd, postgres, client_keypair)
    # An agent started with no keyring at all (no D-Bus, no vault).
    agent = start_agent_process(paths.home_dir(), env=no_keyring_env())
    try:
        waiting = wait_for_state("waiting-for-secret")
        assert "tunnel-tui up pg" in waiting["hint"]
        assert "tunnel-tui vault unlock" in waiting["hint"]
        assert waiting["last_error"].startswith("autostart:")
        # `up` from a terminal with a keyring brings it up (the key goes with the request).
        result = cli("up", "pg")
        assert result.returncode == 0, result.stderr
        assert status_of()["state"] == "up"
    finally:
        agent.stop()


def test_autostart_round_trips_through_add_edit_and_show(secret_service: Any) -> None:
    base = ["--db", "postgresql://app@10.0.0.5:5432/app", "--ssh", "ssh://t@bastion:22"]
    result = cli("add", "a", *base, "--autostart")
    assert result.returncode == 0, result.stderr
    assert Catalog().get("a").autostart is True
    assert "autostart = true" in paths.config_path().read_text()
    result = cli("edit", "a", "--no-autostart", "--json")
    assert result.returncode == 0, result.stderr
    assert '"autostart": false' in result.stdout
    assert Catalog().get("a").autostart is False
    assert "autostart" not in paths.config_path().read_text()
