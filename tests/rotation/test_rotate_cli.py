"""`tunnel-tui rotate-key` as a user runs it: JSON Lines, step list, exit codes, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.rotation.conftest import RotationWorld
from tests.rotation.helpers import openssh_login_works, stop_rotation_after, write_identity
from tunnel_tui.core.rotation_record import ROTATION_STEPS

pytestmark = pytest.mark.timeout(120)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_json_lines_then_human_steps(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    old_identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")

    done = _cli("rotate-key", "prod", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["step"], r["status"]) for r in rows] == [(s, "ok") for s in ROTATION_STEPS]
    assert all(set(r) == {"step", "status", "elapsed_ms", "detail", "hint"} for r in rows)
    assert "agent not running" in rows[ROTATION_STEPS.index("switch")]["detail"]
    assert not openssh_login_works(server, old_identity)

    # Rotating again is a fresh rotation, printed as a step list with times.
    again = _cli("rotate-key", "prod")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    for step, line in zip(ROTATION_STEPS, lines, strict=True):
        assert line.split()[:2] == ["ok", step] and line.split()[2].endswith("s")
    key_id = world.catalog.get("prod").key_id
    new_identity = write_identity(tmp_path, world.catalog.private_key(key_id).reveal(), "new")
    assert openssh_login_works(server, new_identity)


def test_bad_input_exits_2_and_changes_nothing(world: RotationWorld, sshd_factory: Any) -> None:
    server = sshd_factory()
    world.add("prod", server)
    before = world.catalog.load()
    unknown = _cli("rotate-key", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    bad_type = _cli("rotate-key", "prod", "--key-type", "dsa")
    assert bad_type.returncode == 2
    no_rollback = _cli("rotate-key", "prod", "--rollback")
    assert no_rollback.returncode == 2 and "no unfinished rotation" in no_rollback.stderr
    assert world.catalog.load() == before


def test_unreachable_bastion_stops_at_check_with_nothing_written(
    world: RotationWorld, sshd_factory: Any
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    server.stop()
    before = world.catalog.load()
    failed = _cli("rotate-key", "prod", "--json")
    assert failed.returncode == 1
    rows = [json.loads(line) for line in failed.stdout.splitlines()]
    assert [(r["step"], r["status"]) for r in rows] == [("check", "fail")]
    assert "nothing was changed" in rows[0]["detail"] and rows[0]["hint"]
    assert world.catalog.load() == before
    assert [k.id for k in world.catalog.keys()] == [old.id]


def test_bastion_that_does_not_resolve_stops_at_check(world: RotationWorld) -> None:
    world.catalog.add("far", "postgresql://app@10.0.0.5:5432/appdb", "ssh://tt@bastion.invalid:22")
    before = world.catalog.load()
    failed = _cli("rotate-key", "far")
    assert failed.returncode == 1
    first, *rest = failed.stdout.splitlines()
    assert first.split()[:2] == ["FAIL", "check"]
    assert "bastion.invalid" in failed.stdout and "resolve" in failed.stdout
    assert not any(line.split()[:1] == ["ok"] for line in rest)
    assert world.catalog.load() == before  # no record, no new key


def test_failure_exits_1_and_rerun_resumes(world: RotationWorld, sshd_factory: Any) -> None:
    server = sshd_factory(strict_modes=True)
    world.add("prod", server)
    stop_rotation_after("stored")
    server.stop()
    failed = _cli("rotate-key", "prod", "--json")
    assert failed.returncode == 1
    rows = [json.loads(line) for line in failed.stdout.splitlines()]
    assert [(r["step"], r["status"]) for r in rows] == [("check", "fail")]
    assert rows[-1]["hint"]
    assert world.catalog.rotations()  # still recorded, to resume

    server.start()
    resumed = _cli("rotate-key", "prod", "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert "resuming" in rows[1]["detail"]
    assert [r["step"] for r in rows] == [
        "check",
        "generate",
        "install",
        "verify",
        "switch",
        "remove-old",
        "cleanup",
    ]


def test_rollback_before_switch(world: RotationWorld, sshd_factory: Any, tmp_path: Path) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    before = server.authorized_keys_path.read_bytes()
    stop_rotation_after("installed")
    assert server.authorized_keys_path.read_bytes() != before

    undone = _cli("rotate-key", "prod", "--rollback")
    assert undone.returncode == 0, undone.stderr
    assert "rolled back" in undone.stdout
    assert server.authorized_keys_path.read_bytes() == before
    assert [k.id for k in world.catalog.keys()] == [old.id]
    assert world.catalog.rotations() == {}
    identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")
    assert openssh_login_works(server, identity)
