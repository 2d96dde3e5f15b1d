"""Upstream shims for asyncssh (DESIGN.md, "Upstream shims"): version-guarded.

asyncssh's `SSHConnection.send_packet` sends an SSH_MSG_IGNORE packet before every
packet once encryption is on. That is a countermeasure for CBC-mode ciphers; with an
AEAD cipher (aes*-gcm, chacha20-poly1305) it buys nothing, and OpenSSH does not send
it, but it costs us and sshd a second encryption, MAC and parse per packet. It also
formats a log line per packet (`log_sent_packet`) even when packet logging (debug
level 3) is off. asyncssh 2.24 has no option or subclass hook for either, so
`skip_aead_ignore(conn)` wraps that one connection's `send_packet` (an instance
attribute; asyncssh's own recursive call and its channels go through it):

- before a packet that would get an IGNORE under an AEAD cipher, it marks the next
  IGNORE as skippable, and drops it when asyncssh asks for it;
- while packet logging is off, the sent packet is logged to a handler that does
  nothing.

Nothing is copied from asyncssh. The shim is applied only when the source of the
wrapped method is the one it was written against (its SHA-256 below); otherwise
asyncssh's behaviour is left as it is. tests/engine/test_asyncssh_shims.py fails
when asyncssh changes the method, and counts IGNORE packets on the wire.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
from typing import Any

from asyncssh.connection import SSHConnection
from asyncssh.constants import MSG_IGNORE, MSG_KEX_LAST
from asyncssh.encryption import ChachaEncryption, GCMEncryption
from asyncssh.logging import SSHLogger

log = logging.getLogger(__name__)

# inspect.getsource(asyncssh.connection.SSHConnection.send_packet), asyncssh 2.24.1
SEND_PACKET_SHA256 = "fb9da7bec6dd395a2f379f8a0f4dbfc5f194ff80e1ed8630d9a6dbf291359406"
_AEAD = (GCMEncryption, ChachaEncryption)


def source_sha256() -> str:
    return hashlib.sha256(inspect.getsource(SSHConnection.send_packet).encode()).hexdigest()


@functools.cache
def supported() -> bool:
    """True when the installed asyncssh has the `send_packet` this shim was made for."""
    try:
        same = source_sha256() == SEND_PACKET_SHA256
    except (OSError, TypeError):  # no source available (frozen install)
        same = False
    if not same:
        log.info("asyncssh's send_packet changed: per-packet IGNORE left as it is")
    return same


class _Silent:
    """A packet logger that logs nothing (packet logging is off)."""

    __slots__ = ()

    def log_sent_packet(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_SILENT = _Silent()


def skip_aead_ignore(conn: Any) -> bool:
    """Wrap `conn.send_packet` (see the module docstring). Returns whether it did."""
    if not supported() or not isinstance(conn, SSHConnection):
        return False
    original = conn.send_packet  # the bound method of asyncssh's class
    skip = False

    def send_packet(pkttype: int, *args: bytes, handler: Any = None) -> None:
        nonlocal skip
        if pkttype == MSG_IGNORE and skip:
            skip = False  # the IGNORE asyncssh puts before the packet being sent
            return
        if pkttype > MSG_KEX_LAST and isinstance(conn._send_encryption, _AEAD):
            skip = True
        if SSHLogger._debug_level < 3:  # the handler is only used to log the packet
            handler = _SILENT
        try:
            original(pkttype, *args, handler=handler)
        finally:
            skip = False  # a deferred packet (kex/auth running) asked for no IGNORE

    conn.send_packet = send_packet  # type: ignore[method-assign]
    return True
