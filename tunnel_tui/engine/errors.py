"""Typed tunnel errors, each with the real cause and a hint a person can act on."""

from __future__ import annotations

from tunnel_tui.core.errors import HostKeyError, TunnelError
from tunnel_tui.core.model import SshEndpoint

POLICY_HINT = (
    "the bastion's policy forbids this forward: check AllowTcpForwarding and PermitOpen "
    "in its sshd_config and any restrict/permitopen option on this key in authorized_keys"
)


class HopError(TunnelError):
    """A failure tied to one SSH hop (the bastion or a jump host)."""

    def __init__(
        self, message: str, *, hop: SshEndpoint | None = None, hop_index: int = 0,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.hop = hop
        self.hop_index = hop_index

    #: Permanent errors are not retried (auth failures, host key problems).
    permanent = False


class BastionUnreachable(HopError):
    """TCP (or the previous hop's channel) to the SSH server failed, or it went silent."""


class AuthRejected(HopError):
    permanent = True


class HostKeyProblem(HopError, HostKeyError):
    permanent = True

    def __init__(
        self, message: str, *, hop: SshEndpoint | None = None, hop_index: int = 0,
        hint: str | None = None, fingerprint: str = "", public_line: str = "",
    ) -> None:
        super().__init__(message, hop=hop, hop_index=hop_index, hint=hint)
        self.fingerprint = fingerprint
        self.public_line = public_line


class HostKeyUnknown(HostKeyProblem):
    """First contact: the key needs the user's consent (fingerprint shown)."""


class HostKeyChanged(HostKeyProblem):
    """The key differs from the trusted one: possible man-in-the-middle."""


class LocalPortInUse(TunnelError):
    def __init__(self, message: str, *, port: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.port = port


class ChannelOpenFailed(TunnelError):
    """The bastion did not open the forward to the database (SSH channel open failure)."""

    def __init__(self, message: str, *, code: int, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.reason = reason


class TargetUnreachable(ChannelOpenFailed):
    """Code 2: the bastion tried and could not reach the target (refused, DNS, timeout)."""


class ForwardingProhibited(ChannelOpenFailed):
    """Code 1: the bastion's policy forbids the forward."""


class KeyMissing(TunnelError):
    """No private key was given for a key id the connection needs."""


class AgentKeyUnavailable(TunnelError):
    """The key lives in the user's ssh-agent, and that agent is gone or no longer holds
    it. Not retried: only the user can bring it back (a terminal with their agent)."""

    def __init__(
        self, message: str, *, socket_path: str, gone: bool, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.socket_path = socket_path
        self.gone = gone  # the socket itself is gone (not just the key)

    def hint_for(self, name: str) -> str:
        """What brings tunnel `name` back."""
        if self.gone:
            return (
                f"the ssh-agent at {self.socket_path} is gone; run `tunnel-tui up {name}` "
                "from a terminal with your agent"
            )
        return f"load the key into your agent (ssh-add), then run `tunnel-tui up {name}`"
