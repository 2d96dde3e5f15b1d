"""Who is on the other end of a Unix socket: the peer's uid, from the kernel.

Both sides check it: the agent refuses clients of another uid, and clients refuse an
agent of another uid (a socket another user managed to put in place must never get a
request, which may carry a passphrase). Standard library only: on the status path.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path

from tunnel_tui.agent.address import AgentSocketForeign

SOL_LOCAL = 0  # macOS: getsockopt level for LOCAL_PEERCRED
LOCAL_PEERCRED = 0x001
XUCRED_SIZE = 76  # struct xucred: u_int version, uid_t uid, short ngroups, gid_t groups[16]


class PeerNotOurs(AgentSocketForeign):
    """The process answering on the agent socket runs as another user."""


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process on the other end, or None where the OS cannot say."""
    if hasattr(socket, "SO_PEERCRED"):
        fmt = "3i"  # struct ucred: pid, uid, gid
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
        return int(struct.unpack(fmt, raw)[1])
    if sys.platform == "darwin":
        raw = sock.getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED_SIZE)
        return int(struct.unpack_from("2I", raw)[1])
    return None


def require_own_peer(sock: socket.socket, path: Path) -> None:
    """Raise PeerNotOurs unless the peer of `sock` (connected to `path`) is us."""
    uid = peer_uid(sock)
    if uid != os.getuid():
        who = "an unknown user" if uid is None else f"uid {uid}"
        raise PeerNotOurs(
            f"the agent socket {path} is answered by {who}, not by you (uid {os.getuid()}); "
            "nothing was sent",
            hint="another user may be impersonating your agent: check who owns the socket "
            "and its directory, or set TUNNEL_TUI_HOME to a directory of your own",
        )
