"""What the engine authenticates with, per key id: resolved by the caller.

- a `Secret`: a private key from our keyring (generated or imported);
- a `CertifiedKey`: the same, with the OpenSSH user certificate imported next to it;
- an `AgentKey`: a key that stays in the user's ssh-agent (socket + public key).

`resolve` turns a stored Key into one of these in the caller's session (DESIGN.md
"Secrets come from the caller"): the keyring is read only for keys we hold, the
agent socket is the caller's `$SSH_AUTH_SOCK`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tunnel_tui.core.model import Key
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.ssh_agent import AgentKey, socket_path


@dataclass(frozen=True)
class CertifiedKey:
    private: Secret = field(repr=False)
    certificate: str  # "…-cert-v01@openssh.com AAAA…" (public)


ClientKey = Secret | CertifiedKey | AgentKey


def resolve(
    key: Key, read_private: Callable[[str], Secret], agent_socket: str | None = None
) -> ClientKey:
    """The ClientKey for `key`. `agent_socket` None means the caller's $SSH_AUTH_SOCK;
    raises AgentUnavailable when an agent key has no socket to go with it."""
    if key.in_agent:
        return AgentKey(socket_path(agent_socket), key.public_key, key.fingerprint)
    private = read_private(key.id)
    if key.certificate:
        return CertifiedKey(private, key.certificate)
    return private


def private_of(client_key: ClientKey) -> Secret | None:
    """The private key we hold for it (None for an ssh-agent key)."""
    if isinstance(client_key, CertifiedKey):
        return client_key.private
    if isinstance(client_key, Secret):
        return client_key
    return None
