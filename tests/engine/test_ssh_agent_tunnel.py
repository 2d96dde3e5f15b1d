"""The engine with a key that lives only in a real OpenSSH ssh-agent, through real sshd
to real PostgreSQL: up and SELECT 1; when the agent's socket is gone and the link
drops, the tunnel waits in `waiting-for-secret` with a hint (no retry loop), and
comes back with `start` given a live agent."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.engine import FAST, make_conn, trust
from tests.fixtures.ssh_agent import running_agent
from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.keys import fingerprint
from tunnel_tui.core.ssh_agent import AgentKey
from tunnel_tui.core.status import TunnelState
from tunnel_tui.engine import TunnelEngine
from tunnel_tui.engine.errors import AgentKeyUnavailable


async def select_one(port: int, pg) -> int:
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user=pg.user,
                                 password=pg.password, database=pg.database, timeout=10)
    try:
        value: int = await conn.fetchval("SELECT 1")
        return value
    finally:
        await conn.close()


async def test_agent_key_tunnel_select_one_then_agent_gone_waits_without_a_loop(
    sshd_factory, postgres, engine_known_hosts, key_file,
):
    path, public = key_file
    server = sshd_factory()
    server.authorize(public)
    trust(engine_known_hosts, server.host, server.port, server.host_public_key)
    conn = make_conn("agentdb", [(server.host, server.port, server.user)],
                     (postgres.host, postgres.port))
    engine = TunnelEngine(engine_known_hosts, FAST)
    events = []
    engine.subscribe(events.append)
    try:
        with running_agent() as agent:
            agent.add(path)
            keys = {"k-test": AgentKey(agent.socket, public, fingerprint(public))}
            status = await engine.start(conn, keys)
            assert status.state is TunnelState.UP
            assert await select_one(status.local_port, postgres) == 1
        # The agent is gone (socket removed); now the SSH link drops too.
        server.restart()
        await wait_until_async(
            lambda: engine.status("agentdb").state is TunnelState.WAITING_FOR_SECRET,
            10, "waiting-for-secret")
        waiting = engine.status("agentdb")
        assert agent.socket in waiting.last_error and "gone" in waiting.last_error
        assert waiting.hint == (f"the ssh-agent at {agent.socket} is gone; run "
                                "`tunnel-tui up agentdb` from a terminal with your agent")
        assert waiting.to_json()["state"] == "waiting-for-secret"
        seen = len(events)
        # The behaviour is an absence: FAST backoff is 0.05-0.3 s, so a retry loop would
        # have published several reconnect attempts within this second.
        await asyncio.sleep(1.0)
        assert len(events) == seen and engine.status("agentdb").reconnects == 0
        with pytest.raises(OSError):
            await select_one(status.local_port, postgres)  # nothing half-up on the port

        # A terminal with an agent runs `up` again: the tunnel comes back.
        with running_agent() as agent2:
            agent2.add(path)
            keys = {"k-test": AgentKey(agent2.socket, public, fingerprint(public))}
            again = await engine.start(conn, keys)
            assert again.state is TunnelState.UP
            assert await select_one(again.local_port, postgres) == 1
    finally:
        await engine.aclose()


async def test_up_with_an_emptied_agent_fails_with_the_ssh_add_hint(
    sshd, postgres, engine_known_hosts, key_file, ssh_agent,
):
    path, public = key_file
    ssh_agent.add(path)
    ssh_agent.delete_all()
    conn = make_conn("agentdb", [(sshd.host, sshd.port, sshd.user)],
                     (postgres.host, postgres.port))
    keys = {"k-test": AgentKey(ssh_agent.socket, public, fingerprint(public))}
    async with TunnelEngine(engine_known_hosts, FAST) as engine:
        with pytest.raises(AgentKeyUnavailable) as caught:
            await engine.start(conn, keys)
        assert fingerprint(public) in caught.value.message
        assert caught.value.hint and "ssh-add" in caught.value.hint
        assert "tunnel-tui up agentdb" in caught.value.hint
