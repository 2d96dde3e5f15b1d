"""The tunnel engine (asyncssh): SSH hops, local listeners, forwards, reconnects.

Public API: `TunnelEngine`, `Tunnel` (one-off context manager), `EngineSettings`,
the typed errors, `ssh.connect_hops`, `loop.install_uvloop`.
"""

from tunnel_tui.engine.errors import (
    AuthRejected,
    BastionUnreachable,
    ChannelOpenFailed,
    ForwardingProhibited,
    HopError,
    HostKeyChanged,
    HostKeyProblem,
    HostKeyUnknown,
    KeyMissing,
    LocalPortInUse,
    TargetUnreachable,
)
from tunnel_tui.engine.oneoff import Tunnel
from tunnel_tui.engine.service import TunnelEngine
from tunnel_tui.engine.settings import EngineSettings

__all__ = [
    "AuthRejected",
    "BastionUnreachable",
    "ChannelOpenFailed",
    "EngineSettings",
    "ForwardingProhibited",
    "HopError",
    "HostKeyChanged",
    "HostKeyProblem",
    "HostKeyUnknown",
    "KeyMissing",
    "LocalPortInUse",
    "TargetUnreachable",
    "Tunnel",
    "TunnelEngine",
]
