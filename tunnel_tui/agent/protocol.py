"""The agent's wire format: one JSON object per line, versioned.

Request:  {"v": 1, "id": 7, "op": "status", ...arguments}
Reply:    {"v": 1, "id": 7, "ok": true, ...result}
          {"v": 1, "id": 7, "ok": false, "error": {"message", "hint", "code"}}
Events:   after an `events` request is accepted, the agent keeps sending
          {"v": 1, "id": 7, "event": "status", "tunnel": {TunnelStatus.to_json()}}

Pure Python (no asyncio, no asyncssh): both the light CLI client and the agent use it.
"""

from __future__ import annotations

import json
from typing import Any

from tunnel_tui.core.errors import (
    HostKeyError,
    NotFoundError,
    SecretStoreError,
    TunnelTuiError,
    UsageError,
)

VERSION = 1
# A request larger than this gets an error reply and the connection is closed.
MAX_REQUEST_BYTES = 64 * 1024

OPS = frozenset(
    {
        "ping",
        "status",
        "up",
        "down",
        "events",
        "shutdown",
        "reload",
        "vault-unlock",
        "vault-lock",
        "vault-status",
        "switch-key",
        "secret-get",
        "secret-set",
        "secret-delete",
    }
)

# Secret names the agent serves to CLI commands while it holds the vault (DESIGN.md's
# keyring entries); nothing else in the vault is reachable over the socket.
SECRET_PREFIXES = ("key:", "db-password:")

# Error codes on the wire; the client turns each back into the matching error class.
BAD_REQUEST = "bad-request"
TOO_LARGE = "too-large"
UNKNOWN_OP = "unknown-op"
BAD_VERSION = "bad-version"
FORBIDDEN = "forbidden"
NOT_FOUND = "not-found"
USAGE = "usage"
HOST_KEY = "host-key"
SECRET_STORE = "secret-store"
FAILED = "failed"
INTERNAL = "internal"

_USAGE_CODES = {BAD_REQUEST, TOO_LARGE, UNKNOWN_OP, BAD_VERSION, USAGE}


class ProtocolError(TunnelTuiError):
    """A malformed request or reply; carries the wire error code."""

    def __init__(self, message: str, *, code: str = BAD_REQUEST, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def request(op: str, request_id: int, **args: Any) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "op": op, **args}


def parse_request(line: bytes) -> dict[str, Any]:
    """Decode one request line; raises ProtocolError with the code to reply with."""
    if len(line) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"request larger than {MAX_REQUEST_BYTES} bytes", code=TOO_LARGE)
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"request is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("request must be a JSON object")
    if data.get("v") != VERSION:
        raise ProtocolError(
            f"unsupported protocol version {data.get('v')!r} (this agent speaks {VERSION})",
            code=BAD_VERSION,
            hint="restart the agent after upgrading: tunnel-tui agent stop",
        )
    op = data.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r}", code=UNKNOWN_OP)
    return data


def ok_reply(request_id: Any, **result: Any) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": True, **result}


def error_reply(
    request_id: Any, message: str, *, code: str = FAILED, hint: str | None = None
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "id": request_id,
        "ok": False,
        "error": {"message": message, "hint": hint, "code": code},
    }


def code_for(exc: TunnelTuiError) -> str:
    """The wire code of an error raised while serving a request."""
    if isinstance(exc, ProtocolError):
        return exc.code
    if isinstance(exc, NotFoundError):
        return NOT_FOUND
    if isinstance(exc, UsageError):
        return USAGE
    if isinstance(exc, HostKeyError):
        return HOST_KEY
    if isinstance(exc, SecretStoreError):
        return SECRET_STORE
    return FAILED


def error_from_reply(reply: dict[str, Any]) -> TunnelTuiError:
    """Rebuild a typed error (with its exit code) from an error reply."""
    from tunnel_tui.core.errors import TunnelError

    error = reply.get("error") or {}
    message = str(error.get("message") or "the agent refused the request")
    hint = error.get("hint")
    code = error.get("code") or FAILED
    if code == NOT_FOUND:
        return NotFoundError(message, hint=hint)
    if code in _USAGE_CODES:
        return UsageError(message, hint=hint)
    if code == HOST_KEY:
        return HostKeyError(message, hint=hint)
    if code == SECRET_STORE:
        return SecretStoreError(message, hint=hint)
    if code == FORBIDDEN:
        return TunnelTuiError(message, hint=hint)
    return TunnelError(message, hint=hint)
