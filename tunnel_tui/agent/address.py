"""Where the agent of one home directory listens, and its lock and pid files.

The socket lives at `run_dir()/agent.sock`. A Unix socket path must fit in
`sun_path` (108 bytes on Linux, 104 on macOS); for a deep home we fall back to
`/tmp/tunnel-tui-<uid>/<hash of home>/agent.sock` (0700 dirs we own, checked:
/tmp is shared, so a directory planted by another user is refused) and record
the location in `run_dir()/agent.addr` for people looking for it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tunnel_tui.core import paths
from tunnel_tui.core.errors import TunnelTuiError

MAX_SOCKET_PATH = 100


class AgentSocketForeign(TunnelTuiError):
    """The agent socket (or its directory) belongs to another user."""


@dataclass(frozen=True)
class AgentAddress:
    home: Path
    run_dir: Path
    socket: Path
    lock: Path
    pid: Path
    addr_file: Path

    @property
    def is_fallback(self) -> bool:
        return self.socket.parent != self.run_dir


def resolve(home: Path | None = None) -> AgentAddress:
    home = (home or paths.home_dir()).absolute()
    run = paths.run_dir(home)
    sock = run / "agent.sock"
    if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
        import hashlib  # only for deep homes: keep the status path lean

        digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:16]
        sock = Path("/tmp") / f"tunnel-tui-{os.getuid()}" / digest / "agent.sock"
    return AgentAddress(
        home=home,
        run_dir=run,
        socket=sock,
        lock=run / "agent.lock",
        pid=run / "agent.pid",
        addr_file=run / "agent.addr",
    )


def check_owned(path: Path) -> None:
    """Refuse a socket or directory owned by someone else (a planted one, or a shared home)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if info.st_uid != os.getuid():
        raise AgentSocketForeign(
            f"{path} belongs to another user (uid {info.st_uid}), not to you (uid {os.getuid()})",
            hint="set TUNNEL_TUI_HOME to a directory of your own, or remove that file as its owner",
        )
    if stat.S_ISLNK(info.st_mode):
        raise AgentSocketForeign(
            f"{path} is a symbolic link; the agent does not follow links here",
            hint="remove the link",
        )


def ensure_socket_dir(address: AgentAddress) -> None:
    """Create the run dir and (if used) the /tmp fallback dirs, 0700 and ours."""
    paths.ensure_private_dir(address.run_dir)
    if not address.is_fallback:
        return
    base = address.socket.parent.parent
    for directory in (base, address.socket.parent):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        check_owned(directory)
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            raise AgentSocketForeign(f"{directory} is not a directory", hint="remove it")
        if os.lstat(directory).st_mode & 0o077:
            os.chmod(directory, 0o700)
