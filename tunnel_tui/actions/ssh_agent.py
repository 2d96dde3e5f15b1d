"""The caller's ssh-agent: the keys it holds, for `add/edit --ssh-agent` and the form.

Only public data is read (the agent's identity list); the key is stored as its public
half and fingerprint (core.catalog.AgentKeyChoice), and signs in the agent at connect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunnel_tui.core.catalog import AgentKeyChoice
from tunnel_tui.core.ssh_agent import AgentIdentity, list_identities, pick, socket_path

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session


@dataclass(frozen=True)
class AgentKeyInfo:
    """One key the agent offers, as `ssh-add -l` shows it."""

    fingerprint: str  # the key's (for a certificate: the certified key's)
    type: str  # "ssh-ed25519", "sk-ssh-ed25519@openssh.com", ...
    comment: str
    public_line: str  # "type base64" of the key
    certificate: str  # a one-line summary of a certificate the agent holds for it, or ""

    @property
    def label(self) -> str:
        """"me@laptop  ssh-ed25519  SHA256:…": the comment first, as people know it."""
        text = f"{self.comment or '(no comment)'}  {self.type}  {self.fingerprint}"
        return f"{text}  [{self.certificate}]" if self.certificate else text


def agent_socket(session: Session) -> str:
    """The socket this caller's agent listens on (AgentUnavailable if there is none)."""
    return socket_path(session.ssh_auth_sock)


def agent_keys(session: Session) -> list[AgentKeyInfo]:
    """The keys in the caller's agent, certificates folded into their key's entry.
    Blocking (a socket round trip): the TUI calls it in a worker."""
    identities = list_identities(agent_socket(session))
    infos: dict[str, AgentKeyInfo] = {}
    certs: dict[str, str] = {}
    for identity in identities:
        cert = identity.certificate
        if cert is not None:
            certs.setdefault(identity.key_public_line, cert.summary())
            continue
        infos[identity.public_line] = _info(identity, "")
    for line, summary in certs.items():
        if line in infos:
            infos[line] = _info_with(infos[line], summary)
        else:  # a certificate without its plain key listed
            identity = next(i for i in identities if i.key_public_line == line)
            infos[line] = _info(identity, summary)
    return list(infos.values())


def choose_agent_key(session: Session, fingerprint: str | None) -> AgentKeyChoice:
    """The key `add/edit --ssh-agent [--key-fingerprint FP]` stores. With several keys
    and no fingerprint: UsageError (exit 2) listing them (fingerprint, type, comment)."""
    identity = pick(list_identities(agent_socket(session)), fingerprint)
    return AgentKeyChoice(identity.key_public_line)


def _info(identity: AgentIdentity, certificate: str) -> AgentKeyInfo:
    line = identity.key_public_line
    return AgentKeyInfo(identity.key_fingerprint, line.split()[0], identity.comment, line,
                        certificate)


def _info_with(info: AgentKeyInfo, certificate: str) -> AgentKeyInfo:
    return AgentKeyInfo(info.fingerprint, info.type, info.comment, info.public_line, certificate)


__all__ = ["AgentKeyInfo", "agent_keys", "agent_socket", "choose_agent_key"]
