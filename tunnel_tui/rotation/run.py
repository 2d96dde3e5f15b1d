"""rotate(): the steps in order, one rotation at a time per home; roll_back(); and the
unfinished rotation of a connection's key, if any."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from tunnel_tui.core import config as config_mod
from tunnel_tui.core import paths
from tunnel_tui.core.errors import ConfigError, TunnelTuiError, UsageError
from tunnel_tui.core.filelock import locked
from tunnel_tui.core.model import KeyType
from tunnel_tui.core.rotation_record import RotationRecord, find_active
from tunnel_tui.core.steps import StepResult, StepStatus
from tunnel_tui.engine.ssh import KnownHostsLike
from tunnel_tui.rotation.check import check, ensure_rotatable
from tunnel_tui.rotation.cleanup import cleanup
from tunnel_tui.rotation.context import CatalogLike, HandOff, Options, Rotation, SwitchKey
from tunnel_tui.rotation.install import install
from tunnel_tui.rotation.keygen import generate, store
from tunnel_tui.rotation.keyholder import KeyHolder
from tunnel_tui.rotation.remove_old import remove_old
from tunnel_tui.rotation.rollback import undo
from tunnel_tui.rotation.switch import switch as switch_step
from tunnel_tui.rotation.verify import verify

ROTATION_LOCK = "rotation.lock"

# One function per step, in order; each does nothing when the record is past it.
STEPS = (check, generate, store, install, verify, switch_step, remove_old, cleanup)


class RotationError(TunnelTuiError):
    """A rotation cannot run or cannot be read; the record says where it stopped."""


def _home(catalog: CatalogLike, home: Path | None) -> Path | None:
    if home is not None:
        return home
    value = getattr(catalog, "home", None)
    return Path(value) if value is not None else None


@contextlib.contextmanager
def _one_at_a_time(home: Path | None) -> Iterator[None]:
    lock_dir = home or paths.home_dir()
    paths.ensure_private_dir(lock_dir)
    try:
        with locked(lock_dir / ROTATION_LOCK, timeout=0):
            yield
    except (ConfigError, RuntimeError):  # another process / this one (TUI) holds it
        raise RotationError(
            "another key rotation is running for this configuration",
            hint="wait for it to finish; if it was killed, run rotate-key again",
        ) from None


def _known_hosts(known_hosts: KnownHostsLike | None) -> KnownHostsLike:
    if known_hosts is not None:
        return known_hosts
    from tunnel_tui.core.known_hosts import KnownHosts

    return KnownHosts()


def stopped_rotation(
    catalog: CatalogLike, conn_name: str, *, home: Path | None = None
) -> RotationRecord | None:
    """The unfinished rotation of `conn_name`'s key (resumable), or None."""
    conn = catalog.get(conn_name)
    return _active(config_mod.load(_home(catalog, home)).rotations, conn.key_id)


def _active(rotations: dict[str, dict[str, Any]], key_id: str) -> RotationRecord | None:
    try:
        return find_active(rotations, key_id)
    except ValueError as exc:
        raise RotationError(
            f"the recorded rotation in the config cannot be read ({exc})",
            hint="look at the [rotations] table of config.toml; remove the broken entry "
            "only after checking which key the bastion accepts",
        ) from None


async def rotate(
    catalog: CatalogLike,
    conn_name: str,
    *,
    switch: SwitchKey | None = None,
    manual: bool = False,
    key_type: str | None = None,
    wait_seconds: float = 3600,
    poll_interval: float = 5.0,
    known_hosts: KnownHostsLike | None = None,
    home: Path | None = None,
    connect_timeout: float = 20.0,
    hand_off: HandOff | None = None,
    keys: KeyHolder | None = None,
) -> AsyncIterator[StepResult]:
    """Rotate the key of `conn_name` (and of every connection sharing it), or resume
    its unfinished rotation.

    Yields StepResults with ids check, generate, store, install, verify, switch,
    remove-old, cleanup (RUNNING rows while waiting for a person). Stops after the
    first FAIL; the record stays, so running again resumes from there (a `check` that
    fails writes nothing).

    `switch`: how live tunnels move to the new key (None: nothing holds any);
    `manual`: never edit authorized_keys, show the line and poll the new key every
    `poll_interval` s for up to `wait_seconds` (a restricted key goes this way by
    itself); `key_type`: ed25519|rsa (default: the old key's type); `known_hosts`:
    default core.known_hosts.KnownHosts(); `home`: the catalog's; `keys`: where the
    private keys are and the SSH work runs (default: LocalKeys over the catalog's
    store; the agent's for a vault only it holds). Bad input raises
    UsageError before anything is written; one rotation at a time per home: a second
    one fails at once with RotationError.
    """
    home = _home(catalog, home)
    if key_type is not None and key_type not in (KeyType.ED25519, KeyType.RSA):
        raise UsageError(f"cannot generate {key_type} keys", hint="use ed25519 or rsa")
    conn = catalog.get(conn_name)
    ensure_rotatable(catalog.key(conn.key_id))
    options = Options(manual, key_type, wait_seconds, poll_interval, connect_timeout)
    with _one_at_a_time(home):
        run = Rotation(catalog, _known_hosts(known_hosts), home, conn_name, options, switch,
                       key_holder=keys)
        run.hand_off = hand_off  # `hand_off`: the agent waits for a manual install
        run.record = _active(config_mod.load(home).rotations, conn.key_id)
        for step in STEPS:
            async for row in step(run):
                yield row
                if row.status is StepStatus.FAIL or run.handed_off:
                    return


async def roll_back(
    catalog: CatalogLike,
    conn_name: str,
    *,
    known_hosts: KnownHostsLike | None = None,
    home: Path | None = None,
    keys: KeyHolder | None = None,
) -> str:
    """Undo the unfinished rotation of `conn_name`'s key (only before its switch)."""
    home = _home(catalog, home)
    record = stopped_rotation(catalog, conn_name, home=home)
    if record is None:
        raise UsageError(f"no unfinished rotation for {conn_name}")
    if not record.can_roll_back:
        raise UsageError(
            f"the rotation of {conn_name} is past the switch; it can only be completed",
            hint=f"run rotate-key {conn_name} to finish it",
        )
    with _one_at_a_time(home):
        run = Rotation(catalog, _known_hosts(known_hosts), home, conn_name, Options(), None,
                       key_holder=keys)
        run.record = record
        return await undo(run)
