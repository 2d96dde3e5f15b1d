"""What the tunnel form returns: data already checked by the core parser."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tunnel_tui.core.model import Database, SshEndpoint
from tunnel_tui.core.secret import Secret


class KeySource(StrEnum):
    GENERATE = "generate"
    PASTE = "paste"
    FILE = "file"
    REUSE = "reuse"
    AGENT = "ssh-agent"  # the key stays in the user's ssh-agent


@dataclass(frozen=True)
class FormResult:
    name: str
    database: Database
    bastion: SshEndpoint
    password: Secret | None
    key_source: KeySource
    key_pem: Secret | None = None  # a pasted PEM
    key_path: str = ""
    reuse_key_id: str = ""
    agent_public_line: str = ""  # "type base64" of the ssh-agent key chosen
    passphrase: Secret | None = None
    original_name: str | None = None  # set when editing
