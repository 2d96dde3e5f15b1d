"""A PostgreSQL session opened before the rotation keeps working through and after it,
with the tunnel held in-process by TunnelEngine or by the agent process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.fixtures.engine import FAST
from tests.rotation.conftest import RotationWorld
from tests.rotation.helpers import openssh_login_works, write_identity
from tunnel_tui.actions import rotate as rotate_action
from tunnel_tui.actions.session import Session
from tunnel_tui.core.rotation_record import ROTATION_STEPS
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepStatus
from tunnel_tui.engine import TunnelEngine
from tunnel_tui.rotation import rotate

pytestmark = pytest.mark.timeout(120)


async def _pg(port: int, postgres: Any) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1",
        port=port,
        user=postgres.user,
        password=postgres.password,
        database=postgres.database,
        ssl=False,
        timeout=15,
    )


class _Busy:
    """Queries the session every 20 ms while the rotation runs; records any failure."""

    def __init__(self, session: asyncpg.Connection) -> None:
        self.session = session
        self.queries = 0
        self.errors: list[BaseException] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                assert await self.session.fetchval("SELECT count(*) FROM kept") == 1
                self.queries += 1
            except Exception as exc:  # noqa: BLE001 - the test reports whatever broke
                self.errors.append(exc)
                return
            try:
                await asyncio.wait_for(self._stop.wait(), 0.02)
            except TimeoutError:
                pass

    async def __aenter__(self) -> _Busy:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 10)


async def _open_session(port: int, postgres: Any) -> tuple[asyncpg.Connection, int]:
    session = await _pg(port, postgres)
    await session.execute("CREATE TEMP TABLE kept (x int); INSERT INTO kept VALUES (1)")
    return session, await session.fetchval("SELECT pg_backend_pid()")


async def test_session_survives_rotation_with_engine(
    world: RotationWorld, sshd_factory: Any, postgres: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server, db_port=postgres.port)
    old_identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")
    engine = TunnelEngine(world.known_hosts, FAST)

    async def switch(old_id: str, new_id: str, new_private_key: Secret) -> list[str]:
        return await engine.switch_key(old_id, new_id, new_private_key)  # as the agent does

    try:
        status = await engine.start(
            world.catalog.get("prod"), {old.id: world.catalog.private_key(old.id)}
        )
        session, backend = await _open_session(status.local_port, postgres)
        async with _Busy(session) as busy:
            rows = [
                r
                async for r in rotate(
                    world.catalog, "prod", known_hosts=world.known_hosts, switch=switch
                )
            ]
        assert not busy.errors and busy.queries > 0
        assert [(r.step, r.status) for r in rows] == [(s, StepStatus.OK) for s in ROTATION_STEPS]
        assert "live tunnels moved: prod" in rows[ROTATION_STEPS.index("switch")].detail
        # The same database session (same backend, its temp table) still works...
        assert await session.fetchval("SELECT pg_backend_pid()") == backend
        assert await session.fetchval("SELECT count(*) FROM kept") == 1
        # ...the old key is rejected, and new sessions go through the new key's link.
        assert not openssh_login_works(server, old_identity)
        assert engine.tunnel("prod").conn.key_id == world.catalog.get("prod").key_id
        fresh = await _pg(status.local_port, postgres)
        assert await fresh.fetchval("SELECT 1") == 1
        await fresh.close()
        await session.close()
    finally:
        await engine.aclose()


async def test_session_survives_rotation_with_agent(
    world: RotationWorld, sshd_factory: Any, postgres: Any, agent_process: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server, db_port=postgres.port)
    old_identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")
    status = await asyncio.to_thread(agent_process.client().up, "prod")
    session, backend = await _open_session(status.local_port, postgres)
    async with _Busy(session) as busy:
        # The action wires the agent of this home in: it tells it to switch.
        caller = Session(world.home)
        rows = [
            r
            async for r in rotate_action.rotate(
                caller, "prod", known_hosts=world.known_hosts, catalog=world.catalog
            )
        ]
    assert not busy.errors and busy.queries > 0
    assert [(r.step, r.status) for r in rows] == [(s, StepStatus.OK) for s in ROTATION_STEPS]
    assert "live tunnels moved: prod" in rows[ROTATION_STEPS.index("switch")].detail
    assert await session.fetchval("SELECT pg_backend_pid()") == backend
    assert not openssh_login_works(server, old_identity)
    fresh = await _pg(status.local_port, postgres)
    assert await fresh.fetchval("SELECT count(*) FROM pg_stat_activity") >= 1
    await fresh.close()
    await session.close()
    (live,) = await asyncio.to_thread(agent_process.client().status, "prod")
    assert live.state.value == "up"
