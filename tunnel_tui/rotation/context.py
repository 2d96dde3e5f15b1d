"""The state one rotation carries from step to step, and what every step needs:
the record (saved after each change), SSH logins along a target's hops, the crash hook.

Test hook (documented, used by tests/rotation): if the environment variable
TUNNEL_TUI_TEST_CRASH_AFTER names a stage (generated, stored, installed, verified,
switched, removed-remote, done), the process exits at once with status 137 right after
recording that stage, as if SIGKILLed there. It never changes what is recorded.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from tunnel_tui.core import config as config_mod
from tunnel_tui.core import keys as keys_mod
from tunnel_tui.core.model import Connection, Key, SshEndpoint
from tunnel_tui.core.rotation_record import RotationRecord, Stage
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.engine.ssh import KnownHostsLike
from tunnel_tui.rotation.keyholder import KeyHolder, LocalKeys
from tunnel_tui.rotation.targets import Target, rotation_targets

CRASH_HOOK_ENV = "TUNNEL_TUI_TEST_CRASH_AFTER"

# How rotation reaches live tunnels (the agent, or an engine in this process): called at
# the switch with (old key id, new key id, new private key, or None when the agent holds
# the store it is in: KeyHolder.secret_for_agent); returns the connections whose live
# tunnels moved to the new key, or None when nothing holds live tunnels (no agent
# running). A TunnelTuiError or OSError it raises is reported, not fatal: the tunnels
# then reconnect with the new key by themselves.
SwitchKey = Callable[[str, str, Secret | None], Awaitable[list[str] | None]]
# rotate-key --background: (connection, old key id, new key id, new private key or None
# when the agent holds the store it is in, seconds) -> when the agent stops waiting for
# the new key (it waits instead of this process).
HandOff = Callable[[str, str, str, Secret | None, float], Awaitable[datetime]]


class CatalogLike(Protocol):
    """What rotation needs of core.catalog.Catalog."""

    def get(self, name: str) -> Connection: ...

    def connections(self) -> list[Connection]: ...

    def keys(self) -> list[Key]: ...

    def key(self, key_id_or_name: str) -> Key: ...

    def users_of(self, key_id: str) -> list[str]: ...

    def add_key_material(self, name: str, material: keys_mod.KeyMaterial) -> Key: ...

    def private_key(self, key_id: str) -> Secret: ...

    def replace_key(self, old_key_id: str, new_key_id: str) -> list[str]: ...

    def delete_key(self, key_id_or_name: str) -> Key: ...

    def restrict_targets(self, key_id: str) -> list[tuple[str, int]]: ...


@dataclass(frozen=True)
class Options:
    """How the user asked to rotate."""

    manual: bool = False  # never edit authorized_keys: show the line and wait
    key_type: str | None = None  # ed25519|rsa; None: the old key's type
    wait_seconds: float = 3600.0  # how long to wait for a person (manual add / removal)
    poll_interval: float = 5.0  # how often to try while waiting
    connect_timeout: float = 20.0


@dataclass
class Rotation:
    """One rotate() call: its inputs and the record as it advances."""

    catalog: CatalogLike
    known_hosts: KnownHostsLike
    home: Path | None
    conn_name: str
    options: Options
    switch: SwitchKey | None
    record: RotationRecord | None = None
    # rotate-key --background: the wait for a manual install goes to the agent, and this
    # run stops there (`handed_off`), its record kept for `rotate-key NAME` to resume.
    hand_off: HandOff | None = None
    handed_off: bool = False
    # The new key's material between `generate` and `store` (never written elsewhere).
    material: keys_mod.KeyMaterial | None = field(default=None, repr=False)
    # Where the private keys are, so where the SSH work runs (None: this process's
    # store, through the catalog).
    key_holder: KeyHolder | None = None

    @property
    def keys(self) -> KeyHolder:
        if self.key_holder is None:
            self.key_holder = LocalKeys(
                self.catalog.private_key, self.known_hosts, timeout=self.options.connect_timeout
            )
        return self.key_holder

    # --- the record -----------------------------------------------------------------
    @property
    def rec(self) -> RotationRecord:
        """The record, once `generate` made or found it."""
        if self.record is None:
            raise RuntimeError("the rotation has no record before its generate step")
        return self.record

    def save(self, record: RotationRecord) -> RotationRecord:
        self.record = record
        with config_mod.update(self.home) as cfg:
            cfg.rotations[record.old_key_id] = record.to_json()
        return record

    def drop(self) -> None:
        record = self.rec
        with config_mod.update(self.home) as cfg:
            cfg.rotations.pop(record.old_key_id, None)
        self.record = None

    # --- servers --------------------------------------------------------------------
    def targets_of(self, key_ids: Iterable[str]) -> dict[str, Target]:
        found = rotation_targets(self.catalog.connections(), set(key_ids))
        return {t.display: t for t in found}

    def targets(self) -> dict[str, Target]:
        """The servers of the record's old and new key, by display."""
        record = self.rec
        return self.targets_of({record.old_key_id} | {record.new_key_id} - {""})

    def with_current_targets(self) -> RotationRecord:
        """The record with any server that started using the key since it began."""
        record = self.rec
        extra = tuple(d for d in self.targets() if d not in record.targets)
        if not extra:
            return record
        return dataclasses.replace(record, targets=record.targets + extra)

    @staticmethod
    def hops(target: Target, rotating_key: str, use_key: str) -> tuple[SshEndpoint, ...]:
        """The target's path, the hops that use the key being rotated using `use_key`."""
        return tuple(
            dataclasses.replace(hop, key_id=use_key) if hop.key_id == rotating_key else hop
            for hop in target.path
        )

    async def login_works(self, target: Target, rotating_key: str, use_key: str) -> bool:
        """Does the last hop accept key `use_key` in place of `rotating_key`? (Other
        failures propagate.)"""
        return await self.keys.login_works(self.hops(target, rotating_key, use_key))


# --- small shared helpers ---------------------------------------------------------------


def crash_hook(stage: Stage) -> None:
    if os.environ.get(CRASH_HOOK_ENV) == stage.value:
        os._exit(137)  # test hook: die like SIGKILL right after recording `stage`


def key_line(key: Key) -> str:
    return keys_mod.authorized_keys_line(key.public_key, f"tunnel-tui:{key.name}")


def elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def join(items: Iterable[str]) -> str:
    return ", ".join(items) or "none"


class Clock:
    """Rows of one step, all timed from its start."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.started = time.monotonic()

    def row(self, status: StepStatus, detail: str, hint: str | None = None) -> StepResult:
        return StepResult(self.step, status, elapsed_ms(self.started), detail, hint)

    def ok(self, detail: str) -> StepResult:
        return self.row(StepStatus.OK, detail)

    def fail(self, detail: str, hint: str | None = None) -> StepResult:
        return self.row(StepStatus.FAIL, detail, hint)

    def running(self, detail: str, hint: str | None = None) -> StepResult:
        return self.row(StepStatus.RUNNING, detail, hint)
