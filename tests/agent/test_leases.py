"""exec's leases in the agent (agent/leases.py), without servers: who owns a tunnel, when
the last lease takes it down, and reaping the lease of a process that is gone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tunnel_tui.agent.leases import Leases
from tunnel_tui.core.errors import NotFoundError
from tunnel_tui.core.status import TunnelState


class Agent:
    def __init__(self, state: TunnelState) -> None:
        self.state = state
        self.downs: list[str] = []

    def state_of(self, name: str) -> TunnelState:
        return self.state

    async def take_down(self, name: str) -> None:
        self.downs.append(name)
        self.state = TunnelState.DOWN


async def test_the_last_lease_takes_down_what_the_leases_brought_up() -> None:
    agent = Agent(TunnelState.DOWN)
    leases = Leases(agent.state_of, agent.take_down)
    first = leases.take("pg", os.getpid())
    assert first["was_up"] is False and first["owned"] is True
    agent.state = TunnelState.UP  # exec's own `up`
    second = leases.take("pg", os.getpid())
    assert second["owned"] is True  # still the leases' tunnel
    assert await leases.release(str(first["lease_id"])) == {"down": False}
    assert await leases.release(str(second["lease_id"])) == {"down": True}
    assert agent.downs == ["pg"]
    with pytest.raises(NotFoundError):
        await leases.release(str(first["lease_id"]))
    await leases.aclose()


@pytest.mark.parametrize("state", [TunnelState.UP, TunnelState.WAITING_FOR_KEY,
                                   TunnelState.RECONNECTING])
async def test_a_tunnel_someone_wanted_before_stays(state: TunnelState) -> None:
    agent = Agent(state)
    leases = Leases(agent.state_of, agent.take_down)
    lease = leases.take("pg", os.getpid())
    assert lease["was_up"] is True
    assert await leases.release(str(lease["lease_id"])) == {"down": False}
    assert agent.downs == []
    await leases.aclose()


async def test_a_plain_up_meanwhile_pins_it() -> None:
    agent = Agent(TunnelState.DOWN)
    leases = Leases(agent.state_of, agent.take_down)
    lease = leases.take("pg", os.getpid())
    leases.pin("pg")
    assert await leases.release(str(lease["lease_id"])) == {"down": False}
    assert agent.downs == []
    await leases.aclose()


async def test_the_lease_of_a_process_that_is_gone_is_reaped(tmp_path) -> None:
    agent = Agent(TunnelState.DOWN)
    leases = Leases(agent.state_of, agent.take_down)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    lease = leases.take("pg", proc.pid)
    mine = leases.take("other", os.getpid())
    leases.attach(str(lease["lease_id"]), tmp_path / "secret-file")
    (tmp_path / "secret-file").write_text("x")
    assert await leases.reap() == []  # alive
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(10)
    reaped = await leases.reap()
    assert [r.id for r in reaped] == [lease["lease_id"]]
    assert agent.downs == ["pg"]
    assert not (tmp_path / "secret-file").exists()
    assert leases.get(str(mine["lease_id"])).name == "other"
    await leases.aclose()
