"""Steps `generate` (a new key pair, in memory, and the record that starts the
rotation) and `store` (the new key into the secret store and the config)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime

from tunnel_tui.core import keys as keys_mod
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.model import Key, KeyType
from tunnel_tui.core.rotation_record import Stage, begin
from tunnel_tui.core.steps import StepResult
from tunnel_tui.rotation.context import Clock, Rotation, crash_hook, join
from tunnel_tui.rotation.targets import rotation_targets


def new_key_name(old_name: str, now: datetime, taken: Collection[str] = ()) -> str:
    """`prod` → `prod-r20261204203000`; a rotated name's suffix is replaced, not stacked.
    A name in `taken` gets `-2`, `-3`, …: two rotations within one second must not give
    the new key the name of the one in use (`store` finds a key by its name on resume)."""
    base = re.sub(r"-r\d{14}(-\d+)?$", "", old_name)
    stamp = now.strftime("-r%Y%m%d%H%M%S")
    for n in range(1, len(taken) + 2):
        suffix = stamp if n == 1 else f"{stamp}-{n}"
        name = base[: 63 - len(suffix)] + suffix
        if name not in taken:
            return name
    raise AssertionError("unreachable: more names tried than are taken")


async def generate(run: Rotation) -> AsyncIterator[StepResult]:
    clock = Clock("generate")
    if run.record is not None:
        record = run.record
        yield clock.ok(
            f"resuming the rotation of {join(record.connections)} after step {record.stage}"
        )
        return
    old = run.catalog.key(run.catalog.get(run.conn_name).key_id)
    kind = KeyType(run.options.key_type) if run.options.key_type else old.type
    if kind not in (KeyType.ED25519, KeyType.RSA):
        kind = KeyType.ED25519  # ecdsa keys are imported, never generated
    connections = tuple(run.catalog.users_of(old.id))
    targets = rotation_targets(run.catalog.connections(), {old.id})
    run.material = await asyncio.to_thread(keys_mod.generate, kind)
    record = run.save(
        begin(
            old.id,
            new_key_name(old.name, datetime.now(UTC), {key.name for key in run.catalog.keys()}),
            kind.value,
            connections=connections,
            targets=tuple(t.display for t in targets),
        )
    )
    yield clock.ok(
        f"new {kind.value} key {record.new_key_name} ({run.material.fingerprint}) for "
        f"{join(connections)}"
    )
    crash_hook(Stage.GENERATED)


def _stored_key(run: Rotation, name: str) -> Key | None:
    return next((key for key in run.catalog.keys() if key.name == name), None)


async def store(run: Rotation) -> AsyncIterator[StepResult]:
    if run.rec.stage is not Stage.GENERATED:
        return
    clock = Clock("store")
    record = run.rec
    try:
        new_key = _stored_key(run, record.new_key_name)
        if new_key is None:
            material = run.material
            if material is None:  # crashed before storing: the key never left memory
                material = await asyncio.to_thread(keys_mod.generate, KeyType(record.key_type))
            new_key = await asyncio.to_thread(
                run.catalog.add_key_material, record.new_key_name, material
            )
    except TunnelTuiError as exc:
        yield clock.fail(exc.message, exc.hint)
        return
    finally:
        run.material = None
    run.save(record.advance(Stage.STORED, new_key_id=new_key.id))
    yield clock.ok(f"{new_key.name} stored ({new_key.fingerprint})")
    crash_hook(Stage.STORED)
