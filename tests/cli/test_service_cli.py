"""`tunnel-tui service install|uninstall|status`, tested at its boundary (DESIGN.md,
"What CI cannot run"): the unit file's content, checked by `systemd-analyze --user
verify` (present on Linux CI machines with the systemd package; a missing one fails
under CI), and the launchd plist's content. No test needs a running user manager: on
a machine without one, install says what to run instead."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tunnel_tui.actions import service_unit

UNIT = Path(".config/systemd/user/tunnel-tui-agent.service")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunnel_tui", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(
        [binary, "--user", "verify", str(path)], capture_output=True, text=True, timeout=60
    )


def no_user_manager() -> bool:
    return not service_unit.user_manager_reachable()


def test_install_writes_a_unit_that_runs_this_tunnel_tui_and_verifies(isolated_env: Any) -> None:
    assert no_user_manager(), "this test is for machines without a user manager"
    result = cli("service", "install")
    assert result.returncode == 0, result.stderr
    path = isolated_env.user_home / UNIT
    assert f"wrote {path}" in result.stdout
    # No user manager: nothing was started, and the user is told exactly what to run.
    assert "systemctl --user daemon-reload" in result.stdout
    assert "systemctl --user enable --now tunnel-tui-agent.service" in result.stdout
    assert "loginctl enable-linger $USER" in result.stdout

    text = path.read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    program = exec_start.removeprefix("ExecStart=").split()
    assert Path(program[0]).is_absolute() and os.access(program[0], os.X_OK)
    assert program[-1] == "agent"
    assert "Restart=on-failure" in text.splitlines()
    assert "StandardError=journal" in text.splitlines()
    assert f"Environment=TUNNEL_TUI_HOME={isolated_env.home}" in text.splitlines()
    assert "WantedBy=default.target" in text.splitlines()

    checked = verify(path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "", checked.stderr  # no unknown keys, no warnings

    status = cli("service", "status")
    assert status.returncode == 0, status.stderr
    assert f"unit: {path} (installed)" in status.stdout
    assert f"runs: {' '.join(program)}" in status.stdout
    assert "no systemd user manager answers here" in status.stdout

    removed = cli("service", "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not path.exists()
    assert "(not installed)" in cli("service", "status").stdout


def test_the_command_runs_the_agent_in_the_foreground(isolated_env: Any) -> None:
    """ExecStart really is a command that runs the agent: `--help` of the same argv."""
    command = service_unit.agent_command()
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Run the agent in the foreground" in result.stdout


def test_paths_with_spaces_and_percent_are_quoted_for_systemd(isolated_env: Any) -> None:
    tools = isolated_env.root / "my tools"
    tools.mkdir()
    program = tools / "tunnel-tui"
    program.symlink_to(sys.executable)
    text = service_unit.systemd_unit([str(program), "agent"], home="/h/100%")
    assert f'ExecStart="{program}" agent' in text
    assert "Environment=TUNNEL_TUI_HOME=/h/100%%" in text
    unit = isolated_env.root / "tunnel-tui-agent.service"
    unit.write_text(text)
    checked = verify(unit)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr


def test_the_launchd_agent_restarts_on_failure_and_passes_the_home() -> None:
    data = plistlib.loads(
        service_unit.launchd_plist(["/usr/local/bin/tunnel-tui", "agent"], home="/h")
    )
    assert data["Label"] == service_unit.LAUNCHD_LABEL
    assert data["ProgramArguments"] == ["/usr/local/bin/tunnel-tui", "agent"]
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["EnvironmentVariables"] == {"TUNNEL_TUI_HOME": "/h"}
