"""The agent's per-tunnel history (issue 17, "see the tunnel"): per-second bytes and
channels for 10 minutes, reconnects with cause and downtime, memory only. Unit tests
on `History` with a stepped clock, then `status NAME --json` through a real sshd and
PostgreSQL, including a real reconnect (the bastion restarted under the tunnel)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from tests.agent.test_agent_tunnels import (
    add_connection,
    cli,
    pg_query,
    status_json,
    trust_host,
    up,
)
from tests.fixtures.waiting import wait_until
from tunnel_tui.agent.history import WINDOW, History
from tunnel_tui.core.status import TunnelState, TunnelStatus
from tunnel_tui.ui.services import RealServices

BASE = TunnelStatus("pg", TunnelState.UP, "127.0.0.1", 5000, "u@b:22", "db:5432")


class Feed:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.statuses: list[TunnelStatus] = [BASE]

    def clock(self) -> float:
        return self.now

    def step(self, **changes: Any) -> None:
        self.statuses = [dataclasses.replace(self.statuses[0], **changes)]
        self.now += 1.0


def test_samples_are_per_second_deltas_in_a_ten_minute_ring() -> None:
    feed = Feed()
    history = History(lambda: feed.statuses, clock=feed.clock)
    history.sample()  # the first sample has nothing to compare with: 0
    feed.step(bytes_in=1000, bytes_out=10, channels=2)
    history.sample()
    feed.step(bytes_in=1500, bytes_out=10, channels=1)
    history.sample()
    data = history.to_json("pg")
    assert data is not None
    assert data["bytes_in"] == [0, 1000, 500]
    assert data["bytes_out"] == [0, 10, 0]
    assert data["channels"] == [0, 2, 1]
    assert data["interval"] == 1.0 and data["reconnects"] == []
    for _ in range(WINDOW + 5):
        feed.step()
        history.sample()
    assert len(history.to_json("pg")["bytes_in"]) == WINDOW  # type: ignore[index]


def test_a_reconnect_is_recorded_with_cause_and_downtime_and_down_forgets() -> None:
    feed = Feed()
    history = History(lambda: feed.statuses, clock=feed.clock)
    history.sample()
    feed.step(state=TunnelState.RECONNECTING, last_error="keepalive timeout")
    history.sample()
    for _ in range(3):
        feed.step()
        history.sample()
    assert history.to_json("pg")["reconnecting_since"]  # type: ignore[index]
    feed.step(state=TunnelState.UP, reconnects=1)
    history.sample()
    (reconnect,) = history.to_json("pg")["reconnects"]  # type: ignore[index]
    assert reconnect == {"time": "2023-11-14T22:13:21Z", "cause": "keepalive timeout",
                         "downtime": 4.0}
    # Down and back between two samples: recorded, downtime unmeasured.
    feed.step(reconnects=2, last_error="connection reset")
    history.sample()
    assert history.to_json("pg")["reconnects"][-1]["downtime"] is None  # type: ignore[index]
    feed.step(state=TunnelState.DOWN)
    history.sample()
    assert history.to_json("pg") is None


def test_status_name_json_has_history_from_a_real_tunnel(
    sshd_factory: Any, postgres: Any, client_keypair: Any, secret_service: Any,
    agent_reaper: None,
) -> None:
    server = sshd_factory()
    server.authorize(client_keypair.public_line)
    trust_host(server)
    setup = add_connection("pg", "postgresql", postgres, server, client_keypair)
    port = up("pg")
    wait_until(lambda: status_json("pg")[0]["history"], 10, "the first sample")
    asyncio.run(pg_query(port, setup.db, "SELECT repeat('x', 300000)"))

    def busy_second() -> dict[str, Any] | None:
        (obj,) = status_json("pg")
        history = obj["history"]
        return history if history and max(history["bytes_in"], default=0) > 250_000 else None

    history = wait_until(busy_second, 15, "a second with the 300 kB result in the history")
    assert history["interval"] == 1.0 and len(history["bytes_in"]) == len(history["channels"])
    assert "history" not in status_json()[0]  # only with a NAME
    drawn = asyncio.run(RealServices().history("pg"))  # what the app's sparklines get
    assert drawn is not None and max(drawn.bytes_in) > 250_000

    server.restart(kill_sessions=True)  # the bastion goes away under the tunnel
    recorded = wait_until(
        lambda: (status_json("pg")[0]["history"] or {}).get("reconnects"), 60,
        "the reconnect in the history",
    )
    assert recorded[0]["cause"] and recorded[0]["time"].endswith("Z")
    assert recorded[0]["downtime"] is None or recorded[0]["downtime"] >= 0
    assert asyncio.run(pg_query(port, setup.db, "SELECT 1")) == 1

    assert cli("down", "pg").returncode == 0
    assert status_json("pg")[0]["history"] is None
