"""Key rotation without downtime: generate, store, install, verify, switch, remove, clean.

`rotate()` runs in the calling process (CLI or TUI) and yields one StepResult per step
(plus RUNNING rows while it waits). Before and after every step the progress is saved
in the config's `rotations` table (core.rotation_record), so running it again after a
crash resumes; every step is idempotent. The order keeps one working key at all times:
the old key stays authorized and in use until the new one was installed *and* verified
with a fresh connection; only after the switch is the old line removed, and the old
private key deleted once nothing uses it.

A key shared by several connections is rotated once for all of them; its line is added
to (and later removed from) each distinct SSH server that accepts it — the bastions and
any jump host that logs in with it — once per user@host:port.

Test hook (documented, used by tests/rotation): if the environment variable
TUNNEL_TUI_TEST_CRASH_AFTER names a stage (generated, stored, installed, verified,
switched, removed-remote, done), the process exits at once with status 137 right after
recording that stage, as if SIGKILLed there. It never changes what is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncssh

from tunnel_tui.core import config as config_mod
from tunnel_tui.core import keys as keys_mod
from tunnel_tui.core import paths
from tunnel_tui.core.errors import ConfigError, NotFoundError, TunnelTuiError, UsageError
from tunnel_tui.core.filelock import locked
from tunnel_tui.core.formatting import duration_words
from tunnel_tui.core.model import Connection, Key, KeyType, SshEndpoint
from tunnel_tui.core.rotation_record import (
    RotationRecord,
    Stage,
    begin,
    find_active,
)
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.engine.authorized_keys import (
    ManualInstallRequired,
    add_authorized_key,
    remove_authorized_key,
)
from tunnel_tui.engine.errors import AuthRejected
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.ssh import KnownHostsLike, close_all, connect_hops

log = logging.getLogger(__name__)

CRASH_HOOK_ENV = "TUNNEL_TUI_TEST_CRASH_AFTER"
ROTATION_LOCK = "rotation.lock"
_SLOT = "rotating-key"  # key id given to the hops that use the key being rotated


class RotationError(TunnelTuiError):
    """A rotation step failed; the record says where, running again resumes."""


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

    def delete_key(self, key_id: str) -> Any: ...

    def restrict_targets(self, key_id: str) -> list[tuple[str, int]]: ...


@dataclass(frozen=True)
class Target:
    """One SSH server whose authorized_keys holds the key, and the hops to reach it."""

    display: str  # "user@host:port"
    path: tuple[SshEndpoint, ...]  # hops, this server last; key_id explicit on each


def rotation_targets(connections: Iterable[Connection], key_ids: set[str]) -> list[Target]:
    """Distinct servers (bastions and jump hosts) that log in with one of `key_ids`."""
    targets: dict[str, Target] = {}
    for conn in sorted(connections, key=lambda c: c.name):
        path: list[SshEndpoint] = []
        for hop in conn.hops:
            effective = hop.key_id or conn.key_id
            path.append(dataclasses.replace(hop, key_id=effective))
            if effective in key_ids and hop.display not in targets:
                targets[hop.display] = Target(hop.display, tuple(path))
    return list(targets.values())


# --- helpers ---------------------------------------------------------------------------


def _crash_hook(stage: Stage) -> None:
    if os.environ.get(CRASH_HOOK_ENV) == stage.value:
        os._exit(137)  # test hook: die like SIGKILL right after recording `stage`


def _home(catalog: Any, home: Path | None) -> Path | None:
    if home is not None:
        return home
    value = getattr(catalog, "home", None)
    return Path(value) if value is not None else None


def _save(record: RotationRecord, home: Path | None) -> None:
    with config_mod.update(home) as cfg:
        cfg.rotations[record.old_key_id] = record.to_json()


def _drop(record: RotationRecord, home: Path | None) -> None:
    with config_mod.update(home) as cfg:
        cfg.rotations.pop(record.old_key_id, None)


def _new_key_name(old_name: str, now: datetime) -> str:
    base = re.sub(r"-r\d{14}$", "", old_name)
    suffix = now.strftime("-r%Y%m%d%H%M%S")
    return base[: 63 - len(suffix)] + suffix


def _key_line(key: Key) -> str:
    return keys_mod.authorized_keys_line(key.public_key, f"tunnel-tui:{key.name}")


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _join(items: Iterable[str]) -> str:
    return ", ".join(items) or "none"


def _manual_line(catalog: CatalogLike, old_key_id: str, new_key: Key) -> tuple[str, str]:
    """The line a person pastes for a manual install, and a note about its form.

    The connections still use the old key at this point, so the old key's targets are
    the new key's: the line is restricted to them (`key show --restricted` gives the
    same). The plain form stays one command away for a bastion account used otherwise.
    """
    try:
        targets = catalog.restrict_targets(old_key_id)
    except (TunnelTuiError, AttributeError):
        targets = []
    if not targets:
        return _key_line(new_key), ""
    line = keys_mod.authorized_keys_line(new_key.public_key, f"tunnel-tui:{new_key.name}", targets)
    allowed = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in targets)
    note = (
        f"the line allows only tunnels to {allowed}; for an unrestricted line: "
        f"tunnel-tui key show --key {new_key.name}. "
    )
    return line, note


class _Run:
    """State of one rotate() call."""

    def __init__(
        self,
        catalog: CatalogLike,
        known_hosts: KnownHostsLike,
        home: Path | None,
        connect_timeout: float,
    ) -> None:
        self.catalog = catalog
        self.known_hosts = known_hosts
        self.home = home
        self.connect_timeout = connect_timeout

    def targets(self, record: RotationRecord) -> dict[str, Target]:
        ids = {record.old_key_id} | ({record.new_key_id} if record.new_key_id else set())
        found = {t.display: t for t in rotation_targets(self.catalog.connections(), ids)}
        return found

    async def connect(self, target: Target, rotating_key: str, secret: Secret) -> list[Any]:
        """Connections along the target's path, the key being rotated replaced by `secret`."""
        hops = []
        keys: dict[str, Secret] = {_SLOT: secret}
        for hop in target.path:
            if hop.key_id == rotating_key:
                hops.append(dataclasses.replace(hop, key_id=_SLOT))
            else:
                assert hop.key_id is not None
                keys.setdefault(hop.key_id, self.catalog.private_key(hop.key_id))
                hops.append(hop)
        settings = EngineSettings(connect_timeout=self.connect_timeout)
        return await connect_hops(tuple(hops), keys, self.known_hosts, settings=settings)

    async def install(self, target: Target, old: Key, old_secret: Secret, new_key: Key) -> str:
        """Add the new key's line (with the old line's options) through the old key."""
        conns = await self.connect(target, old.id, old_secret)
        try:
            result = await add_authorized_key(conns[-1], _key_line(new_key), like=old.public_key)
        finally:
            await close_all(conns)
        return result.method.value

    async def login_works(self, target: Target, rotating_key: str, secret: Secret) -> bool:
        """Does the last hop accept `secret`? (Other failures propagate.)"""
        try:
            conns = await self.connect(target, rotating_key, secret)
        except AuthRejected as exc:
            if exc.hop_index == len(target.path) - 1:
                return False
            raise
        await close_all(conns)
        return True


async def rotate(
    catalog: CatalogLike,
    conn_name: str,
    *,
    manual: bool = False,
    key_type: str | None = None,
    wait_seconds: float = 3600,
    poll_interval: float = 5.0,
    agent: Any = None,
    known_hosts: KnownHostsLike | None = None,
    home: Path | None = None,
    connect_timeout: float = 20.0,
) -> AsyncIterator[StepResult]:
    """Rotate the key of `conn_name` (and of every connection sharing it).

    Yields StepResults with ids generate, store, install, verify, switch, remove-old,
    cleanup (RUNNING rows while waiting for a manual install). Stops after the first
    FAIL; the record stays, so running again resumes from there.

    `manual`: never edit authorized_keys, show the line and poll the new key every
    `poll_interval` s for up to `wait_seconds`; `key_type`: ed25519|rsa (default: the
    old key's type); `agent`: an object with `switch_key(old_id, new_id)`, sync or
    async (e.g. agent.client.AgentClient); None: this home's agent if it runs;
    `known_hosts`: default core.known_hosts.KnownHosts(); `home`: the catalog's.
    One rotation at a time per home: a second one fails at once with RotationError.
    """
    home = _home(catalog, home)
    lock_dir = home or paths.home_dir()
    paths.ensure_private_dir(lock_dir)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(lock_dir / ROTATION_LOCK, timeout=0))
        except (ConfigError, RuntimeError):  # another process / this one (TUI) holds it
            raise RotationError(
                "another key rotation is running for this configuration",
                hint="wait for it to finish; if it was killed, run rotate-key again",
            ) from None
        rows = _rotate(
            catalog,
            conn_name,
            manual=manual,
            key_type=key_type,
            wait_seconds=wait_seconds,
            poll_interval=poll_interval,
            agent=agent,
            known_hosts=known_hosts,
            home=home,
            connect_timeout=connect_timeout,
        )
        async for row in rows:
            yield row


async def _rotate(
    catalog: CatalogLike,
    conn_name: str,
    *,
    manual: bool = False,
    key_type: str | None = None,
    wait_seconds: float = 3600,
    poll_interval: float = 5.0,
    agent: Any = None,
    known_hosts: KnownHostsLike | None = None,
    home: Path | None = None,
    connect_timeout: float = 20.0,
) -> AsyncIterator[StepResult]:
    conn = catalog.get(conn_name)
    if known_hosts is None:
        from tunnel_tui.core.known_hosts import KnownHosts  # H3's, loaded only when needed

        known_hosts = KnownHosts()
    if key_type is not None and key_type not in (KeyType.ED25519, KeyType.RSA):
        raise UsageError(f"cannot generate {key_type} keys", hint="use ed25519 or rsa")
    run = _Run(catalog, known_hosts, home, connect_timeout)
    cfg = config_mod.load(home)
    record = _active(cfg.rotations, conn.key_id)

    # 1. generate ------------------------------------------------------------------
    started = time.monotonic()
    material: keys_mod.KeyMaterial | None = None
    if record is None:
        old = catalog.key(conn.key_id)
        kind = KeyType(key_type) if key_type else old.type
        if kind not in (KeyType.ED25519, KeyType.RSA):
            kind = KeyType.ED25519  # ecdsa keys are imported, never generated
        connections = tuple(catalog.users_of(old.id))
        first_targets = rotation_targets(catalog.connections(), {old.id})
        material = await asyncio.to_thread(keys_mod.generate, kind)
        record = begin(
            old.id,
            _new_key_name(old.name, datetime.now(UTC)),
            kind.value,
            connections=connections,
            targets=tuple(t.display for t in first_targets),
        )
        _save(record, home)
        yield StepResult(
            "generate",
            StepStatus.OK,
            _ms(started),
            f"new {kind.value} key {record.new_key_name} ({material.fingerprint}) for "
            f"{_join(connections)}",
        )
        _crash_hook(Stage.GENERATED)
    else:
        yield StepResult(
            "generate",
            StepStatus.OK,
            _ms(started),
            f"resuming the rotation of {_join(record.connections)} after step {record.stage}",
        )

    # 2. store ---------------------------------------------------------------------
    if record.stage is Stage.GENERATED:
        started = time.monotonic()
        try:
            new_key = _stored_key(catalog, record.new_key_name)
            if new_key is None:
                if material is None:  # crashed before storing: the key never left memory
                    material = await asyncio.to_thread(keys_mod.generate, KeyType(record.key_type))
                new_key = await asyncio.to_thread(
                    catalog.add_key_material, record.new_key_name, material
                )
        except TunnelTuiError as exc:
            yield StepResult("store", StepStatus.FAIL, _ms(started), exc.message, exc.hint)
            return
        record = record.advance(Stage.STORED, new_key_id=new_key.id)
        _save(record, home)
        yield StepResult(
            "store", StepStatus.OK, _ms(started), f"{new_key.name} stored ({new_key.fingerprint})"
        )
        _crash_hook(Stage.STORED)

    new_key = catalog.key(record.new_key_id)
    new_secret = catalog.private_key(new_key.id)

    # 3. install -------------------------------------------------------------------
    if record.stage is Stage.STORED:
        started = time.monotonic()
        record = _with_current_targets(run, record)
        old = catalog.key(record.old_key_id)
        old_secret = catalog.private_key(old.id)
        targets = run.targets(record)
        for display in record.pending_install:
            target = targets.get(display)
            if target is None:  # no connection goes there any more
                record = record.mark_installed(display, "none")
                continue
            method = ""
            if not manual:
                try:
                    method = await run.install(target, old, old_secret, new_key)
                except ManualInstallRequired as exc:
                    yield StepResult(
                        "install", StepStatus.RUNNING, _ms(started), exc.message, exc.hint
                    )
                except TunnelTuiError as exc:
                    yield StepResult(
                        "install", StepStatus.FAIL, _ms(started), exc.message, exc.hint
                    )
                    return
            if not method:
                waited = _wait_for_manual(
                    run,
                    target,
                    _manual_line(catalog, record.old_key_id, new_key),
                    new_secret,
                    wait_seconds,
                    poll_interval,
                    started,
                )
                async for row in waited:
                    yield row
                    if row.status is StepStatus.FAIL:
                        return
                method = "manual"
            record = record.mark_installed(display, method)
            _save(record, home)
        record = record.advance(Stage.INSTALLED)
        _save(record, home)
        yield StepResult(
            "install",
            StepStatus.OK,
            _ms(started),
            f"new key authorized on {_join(record.targets)} ({record.method or 'none'})",
        )
        _crash_hook(Stage.INSTALLED)

    # 4. verify --------------------------------------------------------------------
    if record.stage is Stage.INSTALLED:
        started = time.monotonic()
        targets = run.targets(record)
        for display in record.targets:
            target = targets.get(display)
            if target is None:
                continue
            rotating = record.key_in_use()
            try:
                ok = await run.login_works(target, rotating, new_secret)
            except TunnelTuiError as exc:
                yield StepResult("verify", StepStatus.FAIL, _ms(started), exc.message, exc.hint)
                return
            if not ok:
                detail = f"{display} rejects the new key"
                undone = await _roll_back(run, record)
                yield StepResult(
                    "verify",
                    StepStatus.FAIL,
                    _ms(started),
                    f"{detail}; rolled back ({undone}), the old key stays in use",
                    "check the bastion's AuthorizedKeysFile and ~/.ssh permissions, then "
                    "run rotate-key again",
                )
                return
        record = record.advance(Stage.VERIFIED)
        _save(record, home)
        yield StepResult(
            "verify",
            StepStatus.OK,
            _ms(started),
            f"a fresh connection with only the new key works on {_join(record.targets)}",
        )
        _crash_hook(Stage.VERIFIED)

    # 5. switch --------------------------------------------------------------------
    if record.stage is Stage.VERIFIED:
        started = time.monotonic()
        # A connection added meanwhile may reach a server that lacks the new key: never
        # switch it to a key that server would reject.
        late = _with_current_targets(run, record)
        targets = run.targets(late)
        for display in late.pending_install:
            try:
                old = catalog.key(record.old_key_id)
                method = await run.install(
                    targets[display], old, catalog.private_key(old.id), new_key
                )
                if not await run.login_works(targets[display], old.id, new_secret):
                    raise RotationError(f"{display} rejects the new key")
            except TunnelTuiError as exc:
                yield StepResult(
                    "switch",
                    StepStatus.FAIL,
                    _ms(started),
                    f"{display} (added during the rotation): {exc.message}",
                    exc.hint or "run rotate-key again",
                )
                return
            late = late.mark_installed(display, method)
            record = late
            _save(record, home)
        touched = await asyncio.to_thread(catalog.replace_key, record.old_key_id, new_key.id)
        names = sorted(set(record.connections) | set(touched))
        note = await _tell_agent(agent, home, record.old_key_id, new_key.id)
        record = record.advance(Stage.SWITCHED, connections=tuple(names))
        _save(record, home)
        yield StepResult(
            "switch",
            StepStatus.OK,
            _ms(started),
            f"{_join(names)} now {'uses' if len(names) == 1 else 'use'} {new_key.name}; {note}",
        )
        _crash_hook(Stage.SWITCHED)

    # 6. remove-old ----------------------------------------------------------------
    if record.stage is Stage.SWITCHED:
        started = time.monotonic()
        old_public = _old_public_key(catalog, record)
        targets = run.targets(record)
        for display in record.pending_removal:
            target = targets.get(display)
            if target is None or old_public is None:
                record = record.mark_removed(display)
                continue
            try:
                conns = await run.connect(target, new_key.id, new_secret)
                try:
                    await remove_authorized_key(conns[-1], old_public)
                finally:
                    await close_all(conns)
            except ManualInstallRequired:
                # Neither SFTP nor exec: done if a person already removed the line.
                old_secret = catalog.private_key(record.old_key_id)
                try:
                    still = await run.login_works(target, new_key.id, old_secret)
                except TunnelTuiError as exc:
                    yield StepResult(
                        "remove-old", StepStatus.FAIL, _ms(started), exc.message, exc.hint
                    )
                    return
                if still:
                    yield StepResult(
                        "remove-old",
                        StepStatus.FAIL,
                        _ms(started),
                        f"cannot edit authorized_keys on {display}; the old key still works",
                        f"remove this line from ~{target.path[-1].user}/.ssh/authorized_keys on "
                        f"{display}, then run rotate-key again: {old_public}",
                    )
                    return
            except TunnelTuiError as exc:
                yield StepResult("remove-old", StepStatus.FAIL, _ms(started), exc.message, exc.hint)
                return
            record = record.mark_removed(display)
            _save(record, home)
        record = record.advance(Stage.REMOVED_REMOTE)
        _save(record, home)
        yield StepResult(
            "remove-old",
            StepStatus.OK,
            _ms(started),
            f"old key's line removed from {_join(record.targets)}",
        )
        _crash_hook(Stage.REMOVED_REMOTE)

    # 7. cleanup -------------------------------------------------------------------
    if record.stage is Stage.REMOVED_REMOTE:
        started = time.monotonic()
        users = catalog.users_of(record.old_key_id)
        if users:
            detail = f"old key kept: still used by {_join(users)}"
        else:
            try:
                await asyncio.to_thread(catalog.delete_key, record.old_key_id)
                detail = "old private key deleted from the secret store"
            except NotFoundError:
                detail = "old private key already deleted"
        record = record.advance(Stage.DONE)
        _save(record, home)
        yield StepResult(
            "cleanup",
            StepStatus.OK,
            _ms(started),
            f"{detail}; connections touched: {_join(record.connections)}",
        )
        _crash_hook(Stage.DONE)


def _with_current_targets(run: _Run, record: RotationRecord) -> RotationRecord:
    """The record with any server that started using the key since it began."""
    extra = tuple(d for d in run.targets(record) if d not in record.targets)
    return dataclasses.replace(record, targets=record.targets + extra) if extra else record


def _active(rotations: dict[str, dict[str, Any]], key_id: str) -> RotationRecord | None:
    try:
        return find_active(rotations, key_id)
    except ValueError as exc:
        raise RotationError(
            f"the recorded rotation in the config cannot be read ({exc})",
            hint="look at the [rotations] table of config.toml; remove the broken entry "
            "only after checking which key the bastion accepts",
        ) from None


def _stored_key(catalog: CatalogLike, name: str) -> Key | None:
    for key in catalog.keys():
        if key.name == name:
            return key
    return None


def _old_public_key(catalog: CatalogLike, record: RotationRecord) -> str | None:
    try:
        return catalog.key(record.old_key_id).public_key
    except NotFoundError:
        return None


async def _wait_for_manual(
    run: _Run,
    target: Target,
    line_and_note: tuple[str, str],
    new_secret: Secret,
    wait_seconds: float,
    poll_interval: float,
    started: float,
) -> AsyncIterator[StepResult]:
    """Show the line to paste and poll a login with the new key until it works."""
    line, note = line_and_note
    server = target.path[-1]
    where = f"~{server.user}/.ssh/authorized_keys on {server.host}:{server.port}"
    yield StepResult(
        "install",
        StepStatus.RUNNING,
        _ms(started),
        f"add this line to {where}: {line}",
        f"{note}Waiting up to {duration_words(wait_seconds)}, checking every {poll_interval:g} s",
    )
    deadline = time.monotonic() + wait_seconds
    rotating = target.path[-1].key_id or ""
    while True:
        try:
            if await run.login_works(target, rotating, new_secret):
                return
        except TunnelTuiError as exc:
            log.info("manual install: %s", exc.message)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            yield StepResult(
                "install",
                StepStatus.FAIL,
                _ms(started),
                f"the new key was not installed on {target.display} in time",
                "add the line, then run rotate-key again (the old key still works)",
            )
            return
        yield StepResult(
            "install",
            StepStatus.RUNNING,
            _ms(started),
            f"waiting for the new key on {target.display}: {int(remaining)} s left",
        )
        await asyncio.sleep(min(poll_interval, remaining))


async def _tell_agent(agent: Any, home: Path | None, old_key_id: str, new_key_id: str) -> str:
    """Move live tunnels to the new key; the rotation itself does not depend on it."""
    if agent is None:
        try:
            from tunnel_tui.agent.client import AgentClient, AgentNotRunning
        except ImportError:
            return "no agent"
        try:
            client = AgentClient(home)
            moved = await asyncio.to_thread(client.switch_key, old_key_id, new_key_id)
        except AgentNotRunning:
            return "agent not running"
        except (TunnelTuiError, OSError) as exc:
            log.warning("agent switch_key failed: %s", exc)
            return "the agent could not switch; its tunnels reconnect with the new key"
    else:
        try:
            result = agent.switch_key(old_key_id, new_key_id)
            moved = await result if inspect.isawaitable(result) else result
        except (TunnelTuiError, OSError, asyncssh.Error) as exc:
            log.warning("switch_key failed: %s", exc)
            return "live tunnels could not switch; they reconnect with the new key"
    names = list(moved or [])
    return f"live tunnels moved: {_join(names)}" if names else "no live tunnels"


async def _roll_back(run: _Run, record: RotationRecord) -> str:
    """Undo a rotation that has not switched: new line off, new key deleted, record dropped."""
    done: list[str] = []
    for action in record.rollback_plan():
        if action.value == "remove-new-remote":
            old_secret = run.catalog.private_key(record.old_key_id)
            new_public = run.catalog.key(record.new_key_id).public_key
            targets = run.targets(record)
            for display in record.installed_on:
                target = targets.get(display)
                if target is None:
                    continue
                try:
                    conns = await run.connect(target, record.old_key_id, old_secret)
                    try:
                        await remove_authorized_key(conns[-1], new_public)
                    finally:
                        await close_all(conns)
                except TunnelTuiError as exc:
                    log.warning("rollback on %s: %s", display, exc.message)
            done.append("new line removed")
        elif action.value == "delete-new-key":
            try:
                await asyncio.to_thread(run.catalog.delete_key, record.new_key_id)
            except NotFoundError:
                pass
            done.append("new key deleted")
        else:
            _drop(record, run.home)
    return ", ".join(done) or "nothing to undo"


async def roll_back(
    catalog: CatalogLike,
    conn_name: str,
    *,
    known_hosts: KnownHostsLike | None = None,
    home: Path | None = None,
) -> str:
    """Undo an unfinished rotation of `conn_name`'s key (only before the switch)."""
    home = _home(catalog, home)
    conn = catalog.get(conn_name)
    record = _active(config_mod.load(home).rotations, conn.key_id)
    if record is None:
        raise UsageError(f"no unfinished rotation for {conn_name}")
    if not record.can_roll_back:
        raise UsageError(
            f"the rotation of {conn_name} is past the switch; it can only be completed",
            hint=f"run rotate-key {conn_name} to finish it",
        )
    if known_hosts is None:
        from tunnel_tui.core.known_hosts import KnownHosts

        known_hosts = KnownHosts()
    return await _roll_back(_Run(catalog, known_hosts, home, 20.0), record)
