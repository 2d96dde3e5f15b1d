"""The persisted progress of one key rotation, and what to do next or to undo it.

A rotation is recorded in the config's `rotations` table, keyed by the *old* key id,
before and after every step, so running `rotate-key` again after a crash resumes where
it stopped. The stage is the last step that *completed*. Every step is idempotent
(adding a key that is present, removing one that is gone, replacing a key nobody uses
any more are no-ops), so repeating the step that was interrupted is always safe.

Invariant kept by the order of steps: until `switched`, the config uses the old key and
the old key stays authorized; from `switched` on, the config uses the new key, which was
verified to work. So at every moment at least one working key is in use.

Pure: values are plain str/list so the record fits JSON and TOML (no nulls).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# The step ids of the rotation's StepResult stream (the rows of the CLI/TUI log). `check`
# writes nothing, so no stage follows it.
ROTATION_STEPS: tuple[str, ...] = (
    "check",
    "generate",
    "store",
    "install",
    "verify",
    "switch",
    "remove-old",
    "cleanup",
)


class Stage(StrEnum):
    """The last completed step, in order."""

    GENERATED = "generated"  # new key name and type chosen, material made in memory
    STORED = "stored"  # new key in the secret store and the config (new_key_id set)
    INSTALLED = "installed"  # new key authorized on every target
    VERIFIED = "verified"  # a fresh connection with only the new key worked everywhere
    SWITCHED = "switched"  # every connection uses the new key; the agent was told
    REMOVED_REMOTE = "removed-remote"  # the old key's line is gone from every target
    DONE = "done"  # the old private key was deleted (if unused)

    @property
    def position(self) -> int:
        """Position in the rotation (str comparison of the values would be alphabetical)."""
        return _ORDER.index(self)

    def reached(self, other: Stage) -> bool:
        return self.position >= other.position


_ORDER: tuple[Stage, ...] = tuple(Stage)

# The step to run after each stage.
_NEXT_STEP: dict[Stage, str | None] = {
    Stage.GENERATED: "store",
    Stage.STORED: "install",
    Stage.INSTALLED: "verify",
    Stage.VERIFIED: "switch",
    Stage.SWITCHED: "remove-old",
    Stage.REMOVED_REMOTE: "cleanup",
    Stage.DONE: None,
}

# The stage a step completes.
STAGE_AFTER: dict[str, Stage] = {
    "generate": Stage.GENERATED,
    "store": Stage.STORED,
    "install": Stage.INSTALLED,
    "verify": Stage.VERIFIED,
    "switch": Stage.SWITCHED,
    "remove-old": Stage.REMOVED_REMOTE,
    "cleanup": Stage.DONE,
}


class RollbackAction(StrEnum):
    REMOVE_NEW_REMOTE = "remove-new-remote"  # take the new key's line off installed targets
    DELETE_NEW_KEY = "delete-new-key"  # delete the new key from the store and config
    DROP_RECORD = "drop-record"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # the record keeps seconds


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RotationRecord:
    old_key_id: str
    new_key_name: str
    key_type: str
    stage: Stage
    started: datetime
    updated: datetime
    new_key_id: str = ""  # "" until stored
    # Connections that used the old key when the rotation began (what it touches).
    connections: tuple[str, ...] = ()
    # Distinct SSH servers ("user@host:port") whose authorized_keys get the new key.
    targets: tuple[str, ...] = ()
    installed_on: tuple[str, ...] = ()
    removed_from: tuple[str, ...] = ()
    method: str = ""  # how the key was installed: sftp, exec, manual (comma-joined if mixed)
    history: tuple[str, ...] = field(default=())  # "stage@iso-time", oldest first

    # --- what next -----------------------------------------------------------------
    @property
    def next_step(self) -> str | None:
        """The rotation step to run next; None when done."""
        return _NEXT_STEP[self.stage]

    @property
    def finished(self) -> bool:
        return self.stage is Stage.DONE

    @property
    def pending_install(self) -> tuple[str, ...]:
        return tuple(t for t in self.targets if t not in self.installed_on)

    @property
    def pending_removal(self) -> tuple[str, ...]:
        return tuple(t for t in self.targets if t not in self.removed_from)

    @property
    def can_roll_back(self) -> bool:
        """Before the switch the old key is still in use and authorized: undo is safe.

        From the switch on, the new key is the one in use (and verified); going back
        would need the old line re-added, so a rotation past that point only rolls
        forward.
        """
        return not self.stage.reached(Stage.SWITCHED)

    def rollback_plan(self) -> tuple[RollbackAction, ...]:
        """The undo actions, in order; empty when the rotation cannot be rolled back."""
        if not self.can_roll_back:
            return ()
        actions: list[RollbackAction] = []
        if self.installed_on:
            actions.append(RollbackAction.REMOVE_NEW_REMOTE)
        if self.new_key_id:
            actions.append(RollbackAction.DELETE_NEW_KEY)
        actions.append(RollbackAction.DROP_RECORD)
        return tuple(actions)

    def key_in_use(self) -> str:
        """The key id the connections use at this stage (old before the switch)."""
        return self.new_key_id if self.stage.reached(Stage.SWITCHED) else self.old_key_id

    # --- changes (each returns a new record) ------------------------------------------
    def advance(
        self, stage: Stage, *, now: datetime | None = None, **changes: Any
    ) -> RotationRecord:
        if not stage.reached(self.stage):
            raise ValueError(f"rotation cannot go back from {self.stage} to {stage}")
        moment = now or _now()
        return replace(
            self,
            stage=stage,
            updated=moment,
            history=(*self.history, f"{stage.value}@{_iso(moment)}"),
            **changes,
        )

    def mark_installed(
        self, target: str, method: str, *, now: datetime | None = None
    ) -> RotationRecord:
        methods = [m for m in self.method.split(",") if m]
        if method not in methods:
            methods.append(method)
        installed = (
            self.installed_on if target in self.installed_on else (*self.installed_on, target)
        )
        return replace(
            self, installed_on=installed, method=",".join(methods), updated=now or _now()
        )

    def mark_removed(self, target: str, *, now: datetime | None = None) -> RotationRecord:
        removed = self.removed_from if target in self.removed_from else (*self.removed_from, target)
        return replace(self, removed_from=removed, updated=now or _now())

    # --- persistence --------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "old_key_id": self.old_key_id,
            "new_key_id": self.new_key_id,
            "new_key_name": self.new_key_name,
            "key_type": self.key_type,
            "step": self.stage.value,
            "started": _iso(self.started),
            "updated": _iso(self.updated),
            "connections": list(self.connections),
            "targets": list(self.targets),
            "installed_on": list(self.installed_on),
            "removed_from": list(self.removed_from),
            "method": self.method,
            "history": list(self.history),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RotationRecord:
        try:
            return cls(
                old_key_id=str(data["old_key_id"]),
                new_key_id=str(data.get("new_key_id") or ""),
                new_key_name=str(data["new_key_name"]),
                key_type=str(data["key_type"]),
                stage=Stage(data["step"]),
                started=_parse_iso(str(data["started"])),
                updated=_parse_iso(str(data["updated"])),
                connections=tuple(str(x) for x in data.get("connections", ())),
                targets=tuple(str(x) for x in data.get("targets", ())),
                installed_on=tuple(str(x) for x in data.get("installed_on", ())),
                removed_from=tuple(str(x) for x in data.get("removed_from", ())),
                method=str(data.get("method") or ""),
                history=tuple(str(x) for x in data.get("history", ())),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"unreadable rotation record: {exc}") from None


def begin(
    old_key_id: str,
    new_key_name: str,
    key_type: str,
    *,
    connections: tuple[str, ...],
    targets: tuple[str, ...],
    now: datetime | None = None,
) -> RotationRecord:
    """A new record at stage `generated` (the first step that writes anything)."""
    moment = now or _now()
    return RotationRecord(
        old_key_id=old_key_id,
        new_key_name=new_key_name,
        key_type=key_type,
        stage=Stage.GENERATED,
        started=moment,
        updated=moment,
        connections=connections,
        targets=targets,
        history=(f"{Stage.GENERATED.value}@{_iso(moment)}",),
    )


def find_active(rotations: dict[str, dict[str, Any]], key_id: str) -> RotationRecord | None:
    """The unfinished rotation involving this key, as old key or (after the switch) new key."""
    for old_id, data in rotations.items():
        record = RotationRecord.from_json(data)
        if record.finished:
            continue
        if old_id == key_id or record.old_key_id == key_id or record.new_key_id == key_id:
            return record
    return None
