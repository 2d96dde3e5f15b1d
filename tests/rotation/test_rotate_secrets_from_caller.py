"""Rotation with live tunnels when secrets come from the caller (issue 13): the agent was
started from a login session that has ended (its D-Bus, hence its keyring, is gone);
`rotate-key` runs in a new session with the keyring and sends the new private key with
the switch, so the live tunnel moves to it and an open database session keeps working."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from tests.agent.test_agent_tunnels import cli, pg_query, trust_host, up_in
from tests.fixtures.secret_service import KeyringSessions
from tunnel_tui.agent.client import AgentClient
from tunnel_tui.core.catalog import Catalog
from tunnel_tui.core.rotation_record import ROTATION_STEPS

pytestmark = pytest.mark.timeout(150)


def test_rotation_moves_live_tunnels_of_an_agent_without_keyring(
    keyring_sessions: KeyringSessions, sshd: Any, postgres: Any, agent_reaper: None
) -> None:
    trust_host(sshd)
    db = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    with keyring_sessions.session() as env:
        added = cli(
            "add", "a", "--json", "--db", db, "--ssh", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}",
            "--db-password-stdin", env=env, stdin=postgres.password + "\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        old_line = json.loads(added.stdout)["authorized_keys_line"]
        sshd.authorize(old_line)
        port = up_in("a", env)  # starts the agent inside this session, which then ends
    agent_pid = AgentClient().ping()["pid"]

    async def open_session() -> asyncpg.Connection:
        return await asyncpg.connect(
            host="127.0.0.1", port=port, user=postgres.user, password=postgres.password,
            database=postgres.database, ssl=False, timeout=15,
        )  # fmt: skip

    loop = asyncio.new_event_loop()
    try:
        session = loop.run_until_complete(open_session())
        backend = loop.run_until_complete(session.fetchval("SELECT pg_backend_pid()"))

        with keyring_sessions.session() as env:
            rotated = cli("rotate-key", "a", "--json", env=env, timeout=120)
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        rows = [json.loads(line) for line in rotated.stdout.splitlines()]
        assert [(r["step"], r["status"]) for r in rows] == [(s, "ok") for s in ROTATION_STEPS]
        switch = rows[ROTATION_STEPS.index("switch")]
        assert "live tunnels moved: a" in switch["detail"]  # the key came with the request

        # The same database session still runs, through the same agent.
        assert loop.run_until_complete(session.fetchval("SELECT pg_backend_pid()")) == backend
        loop.run_until_complete(session.close())
    finally:
        loop.close()
    assert AgentClient().ping()["pid"] == agent_pid
    assert old_line.split()[1] not in sshd.authorized_keys_path.read_text()
    # New sessions go through the new key's link (the old key is off the bastion).
    assert asyncio.run(pg_query(port, postgres, "SELECT 9")) == 9
    with keyring_sessions.session():
        new_id = Catalog().get("a").key_id
    (live,) = AgentClient().status("a")
    assert live.state.value == "up" and new_id
