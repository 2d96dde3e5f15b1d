"""`rotate-key --manual --background`: the wait for the manually installed key goes to
the agent (real sshd, real agent process); the command returns, the record stays, the
agent sees the new key land, and running rotate-key again finishes the rotation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.fixtures.agent import AgentProcess
from tests.fixtures.waiting import wait_until
from tests.rotation.conftest import RotationWorld
from tunnel_tui.agent import wait_records

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the agent starts (autouse fixtures come first): it retries every 0.5 s."""
    monkeypatch.setenv("TUNNEL_TUI_KEY_WAIT_CAP", "0.5")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", *args], env=dict(os.environ),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_background_manual_rotation_waits_in_the_agent_then_resumes(
    world: RotationWorld, sshd_factory: Any, agent_process: AgentProcess,
) -> None:
    server = sshd_factory(strict_modes=True)
    old = world.add("prod", server)
    started = _cli("rotate-key", "prod", "--manual", "--background")
    assert started.returncode == 0, started.stderr
    assert "the agent waits for the new key on" in started.stdout
    line = re.search(r"add this line to \S+ on \S+: (.+)$", started.stdout, re.M)
    assert line, started.stdout
    # Nothing switched yet: the old key still works, the rotation is recorded.
    assert world.catalog.get("prod").key_id == old.id
    (record,) = wait_records.load(world.home, wait_records.KIND_ROTATION).values()
    assert record.name == "prod"

    server.authorize(line[1])  # the admin pastes the line
    wait_until(
        lambda: "the rotation's new key is accepted" in agent_process.log_text(),
        30, "the agent seeing the new key",
    )
    wait_until(
        lambda: not wait_records.load(world.home, wait_records.KIND_ROTATION),
        10, "the rotation wait forgotten",
    )

    # Resume: install finds the key in place; after the switch the old line is removed
    # by hand too (the new line is restricted, as --manual prints it).
    resumed = subprocess.Popen(
        [sys.executable, "-m", "tunnel_tui", "rotate-key", "prod", "--manual",
         "--poll-seconds", "0.2"],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: world.catalog.get("prod").key_id != old.id, 60, "the switch")
        server.deauthorize(old.public_key)
        out, err = resumed.communicate(timeout=60)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait(10)
    assert resumed.returncode == 0, out + err
    assert re.search(r"^\s*ok\s+install", out, re.M), out
    new_key = world.catalog.key_of("prod")
    assert new_key.id != old.id
    authorized = server.authorized_keys_path.read_text()
    assert new_key.public_key.split()[1] in authorized  # as pasted: restricted to the tunnel
    assert old.public_key.split()[1] not in authorized
