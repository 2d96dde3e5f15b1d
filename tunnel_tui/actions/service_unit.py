"""The agent as a login service, so tunnels survive logout, login and reboot:
`tunnel-tui service install|uninstall|status`.

Linux: a systemd USER unit, ~/.config/systemd/user/tunnel-tui-agent.service, that runs
`tunnel-tui agent` (its log goes to the journal), restarts it on failure and, with
autostart connections, brings those tunnels up. `systemctl --user` runs only where a
user manager answers; otherwise we say what to run. Lingering (the user manager running
without a login session) is mentioned, never switched on: `loginctl enable-linger`.
macOS: a launchd agent, ~/Library/LaunchAgents/io.github.tunnel-tui.agent.plist.

Nothing here needs a running user manager to be tested: the unit's text is the
boundary (tests run `systemd-analyze --user verify` on it where that exists).
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tunnel_tui.core import paths

UNIT_NAME = "tunnel-tui-agent.service"
LAUNCHD_LABEL = "io.github.tunnel-tui.agent"
SYSTEMCTL_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServiceReport:
    """What install/uninstall did, or what status found; `todo`: commands for the user."""

    path: Path
    installed: bool
    done: list[str] = field(default_factory=list)  # commands we ran, in order
    todo: list[str] = field(default_factory=list)  # commands the user should run
    active: str | None = None  # systemctl is-active (None: no user manager to ask)
    enabled: str | None = None
    linger: bool | None = None
    exec_start: str | None = None


def is_macos() -> bool:
    return sys.platform == "darwin"


def unit_path() -> Path:
    if is_macos():
        return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def agent_command() -> list[str]:
    """The running tunnel-tui, by absolute path, and `agent`."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "tunnel-tui":
        found = shutil.which(str(argv0)) if not argv0.is_absolute() else str(argv0)
        if found:
            return [str(Path(found).absolute()), "agent"]
    return [str(Path(sys.executable).absolute()), "-m", "tunnel_tui", "agent"]


def _home_env() -> str | None:
    return os.environ.get(paths.HOME_ENV) or None


def systemd_unit(command: list[str] | None = None, home: str | None = None) -> str:
    """The unit's text. `home`: TUNNEL_TUI_HOME to pass on (None: the default)."""
    command = command or agent_command()
    lines = [
        "[Unit]",
        "Description=tunnel-tui agent: SSH tunnels to databases",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(_systemd_quote(part) for part in command)}",
        "Restart=on-failure",
        "RestartSec=5",
        # The agent logs to stderr (and its own file); the journal keeps stderr.
        "StandardOutput=journal",
        "StandardError=journal",
        "UMask=0077",
    ]
    if home:
        lines.append(f"Environment={_systemd_quote(f'{paths.HOME_ENV}={home}')}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def launchd_plist(command: list[str] | None = None, home: str | None = None) -> bytes:
    command = command or agent_command()
    data: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": command,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart on failure
        "ProcessType": "Background",
    }
    if home:
        data["EnvironmentVariables"] = {paths.HOME_ENV: home}
    return plistlib.dumps(data)


def _systemd_quote(word: str) -> str:
    """A word for ExecStart/Environment: quoted when it has spaces, quotes, or `%`."""
    word = word.replace("%", "%%")
    if word and not any(c in word for c in " \t\"'\\"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def user_manager_reachable() -> bool:
    """Whether `systemctl --user` can talk to a user manager (never on CI machines)."""
    if is_macos() or shutil.which("systemctl") is None:
        return False
    return _systemctl("show-environment")[0] == 0


def _systemctl(*args: str) -> tuple[int, str]:
    try:
        done = subprocess.run(
            ["systemctl", "--user", *args],
            capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout or done.stderr).strip()


def linger_enabled() -> bool | None:
    user = _user()
    if is_macos() or not user:
        return None
    return Path("/var/lib/systemd/linger", user).exists()


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER", "")


def linger_hint() -> str:
    return "loginctl enable-linger $USER"


def install() -> ServiceReport:
    """Write the unit (plist) and, where a user manager answers, enable and start it."""
    from tunnel_tui.core.atomic import write_private_file

    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    home = _home_env()
    if is_macos():
        write_private_file(path, launchd_plist(home=home))
        load = f"launchctl load -w {shlex.quote(str(path))}"
        return ServiceReport(path, True, todo=[load])
    write_private_file(path, systemd_unit(home=home).encode())
    steps = ["daemon-reload", f"enable --now {UNIT_NAME}"]
    todo = [] if linger_enabled() else [linger_hint()]
    if not user_manager_reachable():
        return ServiceReport(
            path, True, todo=[f"systemctl --user {step}" for step in steps] + todo
        )
    done = []
    for step in steps:
        code, out = _systemctl(*step.split())
        if code != 0:
            from tunnel_tui.core.errors import TunnelTuiError

            raise TunnelTuiError(
                f"systemctl --user {step} failed: {out or f'exit {code}'}",
                hint=f"the unit is written ({path}); journalctl --user -u {UNIT_NAME}",
            )
        done.append(f"systemctl --user {step}")
    return ServiceReport(path, True, done=done, todo=todo)


def uninstall() -> ServiceReport:
    """Stop and disable (where a user manager answers), then remove the unit."""
    path = unit_path()
    done: list[str] = []
    todo: list[str] = []
    if is_macos():
        if path.exists():
            todo.append(f"launchctl unload -w {shlex.quote(str(path))}")
        path.unlink(missing_ok=True)
        return ServiceReport(path, False, todo=todo)
    reachable = user_manager_reachable()
    if path.exists() and reachable:
        _systemctl("disable", "--now", UNIT_NAME)
        done.append(f"systemctl --user disable --now {UNIT_NAME}")
    elif path.exists():
        todo.append(f"systemctl --user disable --now {UNIT_NAME}")
    path.unlink(missing_ok=True)
    if reachable:
        _systemctl("daemon-reload")
        done.append("systemctl --user daemon-reload")
    return ServiceReport(path, False, done=done, todo=todo)


def status() -> ServiceReport:
    path = unit_path()
    installed = path.exists()
    exec_start = None
    if installed and not is_macos():
        for line in path.read_text().splitlines():
            if line.startswith("ExecStart="):
                exec_start = line.removeprefix("ExecStart=")
    active = enabled = None
    if installed and user_manager_reachable():
        active = _systemctl("is-active", UNIT_NAME)[1] or None
        enabled = _systemctl("is-enabled", UNIT_NAME)[1] or None
    todo = [] if installed else ["tunnel-tui service install"]
    linger = linger_enabled()
    if installed and linger is False:
        todo.append(linger_hint())
    return ServiceReport(
        path, installed, todo=todo, active=active, enabled=enabled, linger=linger,
        exec_start=exec_start,
    )
