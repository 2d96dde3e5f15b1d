"""The rotation record: resume order, what rollback may do, JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunnel_tui.core.rotation_record import (
    ROTATION_STEPS,
    STAGE_AFTER,
    RollbackAction,
    RotationRecord,
    Stage,
    begin,
    find_active,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _record() -> RotationRecord:
    return begin(
        "k-old",
        "prod-2026",
        "ed25519",
        connections=("prod", "replica"),
        targets=("tt@bastion:22", "tt@other:2222"),
        now=T0,
    )


def test_steps_run_in_order_until_done() -> None:
    record = _record()
    seen = []
    while record.next_step is not None:
        step = record.next_step
        seen.append(step)
        record = record.advance(STAGE_AFTER[step], now=T0, new_key_id="k-new")
    assert ["check", "generate", *seen] == list(ROTATION_STEPS)
    assert record.finished
    assert [h.split("@")[0] for h in record.history] == [s.value for s in Stage]


def test_stage_order_is_progress_not_alphabet() -> None:
    assert Stage.SWITCHED.reached(Stage.REMOVED_REMOTE) is False
    assert Stage.DONE.reached(Stage.GENERATED)
    with pytest.raises(ValueError):
        _record().advance(Stage.VERIFIED).advance(Stage.STORED)


def test_rollback_only_before_switch() -> None:
    record = _record()
    assert record.rollback_plan() == (RollbackAction.DROP_RECORD,)
    stored = record.advance(Stage.STORED, new_key_id="k-new")
    half = stored.mark_installed("tt@bastion:22", "sftp")
    assert half.pending_install == ("tt@other:2222",)
    assert half.rollback_plan() == (
        RollbackAction.REMOVE_NEW_REMOTE,
        RollbackAction.DELETE_NEW_KEY,
        RollbackAction.DROP_RECORD,
    )
    assert half.key_in_use() == "k-old"
    switched = half.advance(Stage.INSTALLED).advance(Stage.VERIFIED).advance(Stage.SWITCHED)
    assert not switched.can_roll_back
    assert switched.rollback_plan() == ()
    assert switched.key_in_use() == "k-new"


def test_marks_are_idempotent_and_methods_joined() -> None:
    record = _record().mark_installed("a", "sftp").mark_installed("a", "sftp")
    record = record.mark_installed("b", "exec")
    assert record.installed_on == ("a", "b")
    assert record.method == "sftp,exec"
    assert record.mark_removed("a").mark_removed("a").removed_from == ("a",)


@given(st.sampled_from(list(Stage)), st.integers(0, 10**6))
def test_json_round_trip(stage: Stage, seconds: int) -> None:
    record = _record().advance(stage, now=T0 + timedelta(seconds=seconds), new_key_id="k-new")
    data = json.loads(json.dumps(record.to_json()))
    assert None not in data.values()  # TOML has no null
    assert RotationRecord.from_json(data) == record


def test_find_active_by_old_or_new_key() -> None:
    record = _record().advance(Stage.STORED, new_key_id="k-new")
    table = {"k-old": record.to_json()}
    assert find_active(table, "k-old") == record
    assert find_active(table, "k-new") == record
    assert find_active(table, "k-x") is None
    done = record.advance(Stage.DONE)
    assert find_active({"k-old": done.to_json()}, "k-new") is None


def test_unreadable_record_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unreadable"):
        RotationRecord.from_json({"old_key_id": "x", "step": "bogus"})
