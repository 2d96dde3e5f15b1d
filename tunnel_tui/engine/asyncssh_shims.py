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

A channel's receive window is fixed when it opens (`window=`); asyncssh tops it up
to that size once half is used (`SSHChannel._deliver_data`). `grow_window(channel,
size)` raises that size on an open channel, so a bulk download on a long link can
keep a bandwidth-delay product in flight (forward.py decides when): asyncssh's own
top-up then sends the larger WINDOW_ADJUST.

Nothing is copied from asyncssh. Each shim is applied only when the source of the
method it relies on is the one it was written against (SHA-256 below); otherwise
asyncssh's behaviour is left as it is. tests/engine/test_asyncssh_shims.py fails
when asyncssh changes either method, and counts IGNORE packets on the wire.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
from typing import Any

from asyncssh.channel import SSHChannel
from asyncssh.connection import SSHConnection
from asyncssh.constants import MSG_IGNORE, MSG_KEX_LAST
from asyncssh.encryption import ChachaEncryption, GCMEncryption
from asyncssh.logging import SSHLogger

log = logging.getLogger(__name__)

# inspect.getsource(asyncssh.connection.SSHConnection.send_packet), asyncssh 2.24.1
SEND_PACKET_SHA256 = "fb9da7bec6dd395a2f379f8a0f4dbfc5f194ff80e1ed8630d9a6dbf291359406"
# inspect.getsource(asyncssh.channel.SSHChannel._deliver_data), asyncssh 2.24.1
DELIVER_DATA_SHA256 = "bd94ccbaa59ab51048f695e4830ba02d0bb9af4cc44dfeb19a63a7afde35e74b"
_AEAD = (GCMEncryption, ChachaEncryption)


def source_sha256(method: Any = SSHConnection.send_packet) -> str:
    return hashlib.sha256(inspect.getsource(method).encode()).hexdigest()


def _same(method: Any, digest: str, what: str) -> bool:
    try:
        same = source_sha256(method) == digest
    except (OSError, TypeError):  # no source available (frozen install)
        same = False
    if not same:
        log.info("asyncssh changed %s: left as it is", what)
    return same


@functools.cache
def supported() -> bool:
    """True when the installed asyncssh has the `send_packet` this shim was made for."""
    return _same(SSHConnection.send_packet, SEND_PACKET_SHA256, "send_packet (per-packet IGNORE)")


@functools.cache
def window_supported() -> bool:
    """True when asyncssh tops channel windows up as `grow_window` expects."""
    return _same(
        SSHChannel._deliver_data, DELIVER_DATA_SHA256, "_deliver_data (channel windows)"
    ) and "self._init_recv_window = window" in inspect.getsource(SSHChannel.__init__)


def grow_window(channel: Any, size: int) -> bool:
    """Raise an open channel's receive window to `size` bytes (never lowers it)."""
    if not window_supported() or size <= channel._init_recv_window:
        return False
    channel._init_recv_window = size
    return True


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
