"""`rotate-key --manual --background`: the agent waits for a rotation's new key (DESIGN.md,
"Rotation": "it prints the new line, waits (in the agent when --background ...)").

The rotation itself runs in the caller and stops at `install` with its record kept;
the agent polls a login with the new key (validate's check, as for `up
--wait-for-key`) until the bastion accepts it or the deadline passes, then notifies
("NAME: the new key is accepted") and forgets the wait. Running `rotate-key NAME`
again resumes the rotation, which finds the key in place and goes on. The deadline is
recorded (`wait_records`, kind "rotation"), so a restarted agent resumes the wait,
reading the new key from its own store (the rotation stored it before `install`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tunnel_tui.agent import wait_records
from tunnel_tui.agent.waiting import KeyWaits, _Outcome, _Wait
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Connection
from tunnel_tui.core.secret import Secret

if TYPE_CHECKING:
    from tunnel_tui.agent.service import TunnelService

log = logging.getLogger("tunnel_tui.agent")


def with_key(conn: Connection, old_key_id: str, new_key_id: str) -> Connection:
    """`conn` as it will be after the switch: `new_key_id` where `old_key_id` was."""
    jumps = tuple(
        dataclasses.replace(h, key_id=new_key_id) if h.key_id == old_key_id else h
        for h in conn.jumps
    )
    key_id = new_key_id if conn.key_id == old_key_id else conn.key_id
    return dataclasses.replace(conn, key_id=key_id, jumps=jumps)


class RotationWaits:
    def __init__(self, service: TunnelService, waits: KeyWaits) -> None:
        self._service = service
        self._waits = waits  # their attempt and backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(
        self, name: str, old_key_id: str, new_key_id: str, keys: dict[str, Secret],
        seconds: float,
    ) -> datetime:
        """Wait in the background for `new_key_id` to be accepted on NAME's hops; the
        deadline. `keys`: the new private key and any other hop's key."""
        from tunnel_tui.agent.service import CallerSecrets

        service = self._service
        conn = with_key(service.connection(name), old_key_id, new_key_id)
        resolved = await service._keys_for(conn, CallerSecrets(keys=keys))
        now = datetime.now(UTC)
        wait = _Wait(conn, now + timedelta(seconds=seconds), now, CallerSecrets(keys=keys),
                     resolved)
        await asyncio.to_thread(
            wait_records.put, service.home,
            wait_records.WaitRecord(name, wait.until, wait_records.KIND_ROTATION),
        )  # fmt: skip
        self._begin(wait, old_key_id, new_key_id)
        log.info("%s: waiting for the rotation's new key until %s", name, wait.until)
        return wait.until

    async def resume(self) -> None:
        """At agent start: the recorded rotation waits (the new key from our own store)."""
        from tunnel_tui.agent.service import CallerSecrets
        from tunnel_tui.core import config

        service = self._service
        records = await asyncio.to_thread(
            wait_records.load, service.home, wait_records.KIND_ROTATION
        )
        if not records:
            return
        try:
            rotations = await asyncio.to_thread(lambda: config.load(service.home).rotations)
        except TunnelTuiError:
            rotations = {}
        now = datetime.now(UTC)
        for name, record in records.items():
            conn = service.connections().get(name)
            pair = _rotation_of(rotations, conn.key_id) if conn is not None else None
            if conn is None or pair is None or record.until <= now:
                await asyncio.to_thread(
                    wait_records.drop, service.home, name, wait_records.KIND_ROTATION
                )
                continue
            old_key_id, new_key_id = pair
            target = with_key(conn, old_key_id, new_key_id)
            wait = _Wait(target, record.until, now, CallerSecrets(no_keys="agent restarted"))
            self._begin(wait, old_key_id, new_key_id)

    async def aclose(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    def _begin(self, wait: _Wait, old_key_id: str, new_key_id: str) -> None:
        previous = self._tasks.pop(wait.name, None)
        if previous is not None:
            previous.cancel()
        self._tasks[wait.name] = asyncio.get_running_loop().create_task(self._run(wait))

    async def _run(self, wait: _Wait) -> None:
        from tunnel_tui.agent.notify import notify

        service = self._service
        waits = self._waits
        tries = 0
        outcome = "the wait ended"
        try:
            while datetime.now(UTC) < wait.until:
                if wait.keys is None:
                    try:
                        from tunnel_tui.agent.service import CallerSecrets

                        wait.keys = await service._keys_for(wait.conn, CallerSecrets())
                    except TunnelTuiError as exc:
                        log.info("%s: the rotation's new key is not readable: %s",
                                 wait.name, exc.message)
                        await asyncio.sleep(waits.cap)
                        continue
                attempt = await waits._attempt(wait)
                tries += 1
                if attempt.outcome is _Outcome.ACCEPTED:
                    outcome = "accepted"
                    log.info("%s: the rotation's new key is accepted", wait.name)
                    if service._alert is not None:
                        notify(f"tunnel-tui: {wait.name}: the new key is accepted",
                               f"finish the rotation: tunnel-tui rotate-key {wait.name}")
                    return
                if attempt.outcome is _Outcome.END:
                    outcome = attempt.exc.message if attempt.exc else "stopped"
                    log.warning("%s: stopped waiting for the rotation's new key: %s",
                                wait.name, outcome)
                    return
                left = (wait.until - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(
                    max(0.0, min(_backoff(tries, waits.first_delay, waits.cap), left))
                )
            log.warning("%s: the rotation's new key was not installed in time", wait.name)
        finally:
            if outcome != "the wait ended" or datetime.now(UTC) >= wait.until:
                await asyncio.to_thread(
                    wait_records.drop, service.home, wait.name, wait_records.KIND_ROTATION
                )
            if self._tasks.get(wait.name) is asyncio.current_task():
                del self._tasks[wait.name]


def _rotation_of(rotations: dict[str, dict[str, object]], key_id: str) -> tuple[str, str] | None:
    """(old key id, new key id) of the unfinished rotation of `key_id`, if any."""
    record = rotations.get(key_id)
    if not isinstance(record, dict):
        return None
    new = record.get("new_key_id")
    return (key_id, str(new)) if isinstance(new, str) and new else None


def _backoff(tries: int, first: float, cap: float) -> float:
    from tunnel_tui.engine.reconnect import backoff_delay

    return backoff_delay(tries, first, cap)
