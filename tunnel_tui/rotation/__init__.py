"""Key rotation without downtime, one function per step (DESIGN.md, "Key rotation"):
check, generate, store, install, verify, switch, remove-old, cleanup.

`rotate()` runs in the calling process (CLI or TUI, through actions.rotate) and yields
one StepResult per step (plus RUNNING rows while it waits for a person). Before and after
every step the progress is saved in the config's `rotations` table
(core.rotation_record), so running it again after a crash resumes; every step is
idempotent. The order keeps one working key at all times: the old key stays authorized
and in use until the new one was installed *and* verified with a fresh connection; only
after the switch is the old line removed, and the old private key deleted once nothing
uses it. `check` runs first and writes nothing: a bastion that does not resolve stops
there, not half-way.

A key shared by several connections is rotated once for all of them; its line is added
to (and later removed from) each distinct SSH server that accepts it — the bastions and
any jump host that logs in with it — once per user@host:port.

Live tunnels are reached through a `SwitchKey` callback given by the caller, and the
SSH work that needs a private key runs where the keys are, through a `KeyHolder`
(rotation.keyholder: this process, or the agent that holds the vault); this package
never imports the agent. Crash test hook: see rotation.context.
"""

from tunnel_tui.rotation.check import ensure_rotatable
from tunnel_tui.rotation.context import CRASH_HOOK_ENV, CatalogLike, SwitchKey
from tunnel_tui.rotation.keyholder import KeyHolder, LineRemoval, LocalKeys
from tunnel_tui.rotation.run import RotationError, roll_back, rotate, stopped_rotation
from tunnel_tui.rotation.targets import Target, rotation_targets

__all__ = [
    "CRASH_HOOK_ENV",
    "CatalogLike",
    "KeyHolder",
    "LineRemoval",
    "LocalKeys",
    "RotationError",
    "SwitchKey",
    "Target",
    "ensure_rotatable",
    "roll_back",
    "rotate",
    "rotation_targets",
    "stopped_rotation",
]
