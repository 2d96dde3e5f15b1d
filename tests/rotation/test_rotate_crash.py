"""Kill the rotating process right after each recorded step, run it again: it always ends
with exactly one working key and a valid authorized_keys, never with zero working keys.

The kill uses the documented test hook TUNNEL_TUI_TEST_CRASH_AFTER=<stage>
(tunnel_tui.rotation.context): the process `os._exit(137)`s right after saving that stage, which is
what a SIGKILL at that moment leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.rotation.conftest import RotationWorld
from tests.rotation.helpers import openssh_login_works, write_identity
from tunnel_tui.core import keys
from tunnel_tui.core.authorized_keys_file import find_keys, invalid_lines, split_lines
from tunnel_tui.core.rotation_record import Stage
from tunnel_tui.rotation import CRASH_HOOK_ENV

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


class FileWatcher:
    """Snapshots authorized_keys (every few ms) while a rotation runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshots: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        for _ in range(20_000):  # bounded: ~60 s at 3 ms
            text = self.path.read_bytes().decode()
            if not self.snapshots or self.snapshots[-1] != text:
                self.snapshots.append(text)
            if self._stop.wait(0.003):
                return

    def __enter__(self) -> FileWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)


def _run_rotation(name: str, known_hosts: Path, crash_after: str | None) -> tuple[int, list[dict]]:
    env = dict(os.environ)
    env.pop(CRASH_HOOK_ENV, None)
    if crash_after:
        env[CRASH_HOOK_ENV] = crash_after
    proc = subprocess.run(
        [sys.executable, "-m", "tests.rotation.crash_runner", name, str(known_hosts)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode in (0, 1, 137), proc.stderr[-2000:]
    return proc.returncode, rows


@pytest.mark.parametrize("stage", [s.value for s in Stage])
def test_kill_after_each_step_then_rerun(
    world: RotationWorld, sshd_factory: Any, tmp_path: Path, stage: str
) -> None:
    server = sshd_factory(strict_modes=True)
    server.authorize("# ops keys, do not touch")
    server.authorize(keys.generate().public_line + " alice", "restrict,port-forwarding")
    old = world.add("prod", server)
    server.authorize(keys.generate().public_line + " bob")
    before = server.authorized_keys_path.read_bytes().decode()
    others = [line for line in split_lines(before) if not find_keys(line, old.public_key)]
    old_identity = write_identity(tmp_path, world.catalog.private_key(old.id).reveal(), "old")
    known_hosts = tmp_path / "known_hosts"
    key_type, blob = server.host_public_key.split()[:2]
    known_hosts.write_text(f"{server.host} {server.port} {key_type} {blob}\n")

    with FileWatcher(server.authorized_keys_path) as watcher:
        code, rows = _run_rotation("prod", known_hosts, crash_after=stage)
        assert code == 137, rows
        # Right after the kill: the connection's configured key works.
        in_use = world.catalog.get("prod").key_id
        identity = write_identity(tmp_path, world.catalog.private_key(in_use).reveal(), "in-use")
        assert openssh_login_works(server, identity)
        stored = {k.public_key for k in world.catalog.keys()}

        code, rows = _run_rotation("prod", known_hosts, crash_after=None)
        if stage == Stage.DONE.value:
            # Finished before the kill: running again starts a fresh rotation, fine too.
            assert code == 0
        else:
            assert code == 0, rows
            assert [r["status"] for r in rows] == ["ok"] * len(rows)
            assert rows[0]["step"] == "check"
            assert "resuming" in rows[1]["detail"]

    final_id = world.catalog.get("prod").key_id
    new_identity = write_identity(tmp_path, world.catalog.private_key(final_id).reveal(), "final")
    working = [openssh_login_works(server, p) for p in (old_identity, new_identity)]
    assert working == [False, True]  # exactly one working key: the configured one
    after = server.authorized_keys_path.read_bytes().decode()
    assert invalid_lines(after) == []
    assert [line for line in split_lines(after) if line in others] == others
    ours = [line for line in split_lines(after) if line not in others]
    assert len(ours) == 1 and find_keys(ours[0], world.catalog.key(final_id).public_key)

    # Never zero working keys: every state of the file held the old key or a new key
    # that was already stored, and stayed valid with the other lines intact.
    stored |= {k.public_key for k in world.catalog.keys()}
    assert watcher.snapshots
    for text in watcher.snapshots:
        assert invalid_lines(text) == []
        assert all(line in split_lines(text) for line in others)
        assert any(find_keys(text, public) for public in stored | {old.public_key})
