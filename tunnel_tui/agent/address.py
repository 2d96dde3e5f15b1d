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


def _check_private_dir(directory: Path) -> bool:
    """Refuse a socket directory that is not a real directory of ours, closed to others
    (anyone who can write it can swap the socket). False when it does not exist."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return False
    check_owned(directory)  # also refuses a symbolic link
    if not stat.S_ISDIR(info.st_mode):
        raise AgentSocketForeign(f"{directory} is not a directory", hint="remove it")
    if info.st_mode & 0o077:
        raise AgentSocketForeign(
            f"{directory} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            "another user could put their own socket there",
            hint=f"chmod 700 {directory}",
        )
    return True


def socket_dirs(address: AgentAddress) -> tuple[Path, ...]:
    """The directories that must be ours and private for the socket to be trusted."""
    if address.is_fallback:
        return (address.socket.parent.parent, address.socket.parent)
    return (address.socket.parent,)


def check_socket_dir(address: AgentAddress) -> None:
    """Before connecting: every directory on the way to the socket is ours and 0700."""
    for directory in socket_dirs(address):
        if not _check_private_dir(directory):
            return  # not there: connecting finds no agent


def ensure_socket_dir(address: AgentAddress) -> None:
    """Create the run dir and (if used) the /tmp fallback dirs, 0700 and ours.

    A fallback directory someone else created (or made a link) is refused, never
    chmod-ed: /tmp is shared."""
    paths.ensure_private_dir(address.run_dir)
    if not address.is_fallback:
        return
    for directory in socket_dirs(address):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(directory, 0o700)  # whatever the umask
        _check_private_dir(directory)
