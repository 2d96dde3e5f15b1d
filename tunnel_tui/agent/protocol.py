"""The agent's wire format: one JSON object per line, versioned.

Request:  {"v": 2, "id": 7, "op": "status", ...arguments}
Reply:    {"v": 2, "id": 7, "ok": true, ...result}
          {"v": 2, "id": 7, "ok": false, "error": {"message", "hint", "code"}}
Events:   after an `events` request is accepted, the agent keeps sending
          {"v": 2, "id": 7, "event": "status", "tunnel": {TunnelStatus.to_json()}}

Every request carries the client's version and every reply the agent's: that is the
version exchange. An agent refuses a request of another version (code `bad-version`,
its own `v` in the reply); the client then says which side is older and that
`tunnel-tui agent restart` fixes it. `ping`, `status` and `shutdown` keep their shape
across versions, so `agent stop|restart` can still talk to an older agent (they resend
with the agent's version).

Version 2 (secrets come from the caller, DESIGN.md):
  up          {"name", "wait", "secrets": {"keys": {KEY_ID: PEM} | null,
                                             "no_keys": why there are none | null,
                                             "ssh_auth_sock": "/path" | null} | null}
              `keys` may leave out keys the agent already holds (see secrets-held);
              `keys` null: the caller has no keyring and no vault (`no_keys` says why),
              the agent reads its own. `ssh_auth_sock`: the caller's ssh-agent, for
              keys that live there. `secrets` null: the caller has nothing at all.
              `wait_for_key`: seconds (up --wait-for-key): one attempt now, then the
              agent keeps waiting; the reply is the `waiting-for-key` status (or `up`);
              `secrets.db_password` (string or null) then goes along for the checks.
  rotation-wait {"name", "old_key_id", "new_key_id", "keys": {KEY_ID: PEM}, "seconds"}
              -> {"until": ISO 8601 UTC}: rotate-key --background; the agent polls a login
              with the new key and notifies when it is accepted (agent/rotation_wait.py).
  secrets-held {"name"} -> {"keys": {KEY_ID: bool}, "all": bool, "vault_unlocked": bool}
              never a secret: only whether the agent holds each key the tunnel needs.
  switch-key  {"old_key_id", "new_key_id", "new_private_key": PEM | null}
  lease       {"name", "pid"} -> {"lease_id", "was_up", "owned"}: `exec` (process PID)
              holds NAME; `up` with that "lease_id" brings it up without pinning it
              (a plain `up` pins it: it then outlives the leases). agent/leases.py.
  release     {"lease_id"} -> {"down": bool}: the tunnel goes down with its last
              lease unless it was up before; a lease whose pid is gone is reaped.
  lease-password-file {"lease_id", "port"} -> {"path" | null}: the caller has no store,
              the agent holds the vault: it writes exec's 0600 password file (PGPASSFILE
              or MySQL defaults) in the run dir and deletes it with the lease.
  history     {"name"} -> {"history": {"interval", "window", "bytes_in": [...],
              "bytes_out": [...], "channels": [...], "reconnects": [{"time", "cause",
              "downtime"}], "reconnecting_since"} | null}: the last 10 minutes, one
              sample a second, memory only (agent/history.py).
  key-work    {"action": "login"|"add-line"|"remove-lines", "hops", ...} -> only what
              happened: SSH work with a key of the vault the agent holds, for a caller
              that has no other store (rotation's SSH steps, remove's cleanup).
              agent/keywork.py.
  validate    {"name", ...} -> a stream of StepResult rows (and host-key questions):
              the check run in the agent, with the vault it holds. agent/validation.py.
  secret-get  gone: no reply ever carries a secret. secret-set/secret-delete stay
              (write-only, vault only, see SECRET_PREFIXES); secret-exists {"name"} ->
              {"exists": bool} lets a writer know whether it would overwrite;
              secret-copy {"name", "to"} -> {"copied": bool} copies an entry inside
              the vault (same prefix: `edit --rename` moves a db password along).

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

VERSION = 2
# The oldest version whose ping/status/shutdown `agent stop|restart` can still send.
OLDEST_STOPPABLE = 1
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
        "secrets-held",
        "secret-exists",
        "secret-set",
        "secret-delete",
        "secret-copy",
        "lease",
        "release",
        "history",
        "rotation-wait",
        "lease-password-file",
        "key-work",
        "validate",
    }
)

# Secret names CLI commands may store into (or delete from) the vault the agent holds
# unlocked (DESIGN.md's keyring entries). Write-only: `add` or `key generate` from an
# SSH login after `vault unlock` keeps working with no passphrase in argv or env, while
# nothing ever reads a secret back over the socket.
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
# `up` without a key the tunnel needs (the agent dropped it since secrets-held said it
# held it): the client resolves the keys named in `error.missing` and asks again.
SECRETS_NEEDED = "secrets-needed"
FAILED = "failed"
INTERNAL = "internal"

_USAGE_CODES = {BAD_REQUEST, TOO_LARGE, UNKNOWN_OP, BAD_VERSION, USAGE}


class ProtocolError(TunnelTuiError):
    """A malformed request or reply; carries the wire error code."""

    def __init__(self, message: str, *, code: str = BAD_REQUEST, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


class AgentVersionMismatch(TunnelTuiError):
    """The running agent speaks another protocol version (exit 1): restart it."""

    def __init__(self, agent_version: int | None) -> None:
        older = agent_version is None or agent_version < VERSION
        super().__init__(
            f"the running agent is {'older' if older else 'newer'} "
            f"(protocol {agent_version}; this tunnel-tui speaks {VERSION})",
            hint="tunnel-tui agent restart",
        )
        self.agent_version = agent_version


class SecretsNeeded(TunnelTuiError):
    """`up` reached the agent without a key it no longer holds; resend with `missing`."""

    def __init__(self, message: str, missing: list[str], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.missing = missing


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
    except RecursionError:  # e.g. 60,000 '[': json's decoder recurses per level
        raise ProtocolError("request is nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("request must be a JSON object")
    if data.get("v") != VERSION:
        raise ProtocolError(
            f"unsupported protocol version {data.get('v')!r} (this agent speaks {VERSION})",
            code=BAD_VERSION,
            hint="tunnel-tui agent restart",
        )
    op = data.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r}", code=UNKNOWN_OP)
    return data


def ok_reply(request_id: Any, **result: Any) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": True, **result}


def error_reply(
    request_id: Any,
    message: str,
    *,
    code: str = FAILED,
    hint: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "id": request_id,
        "ok": False,
        "error": {"message": message, "hint": hint, "code": code, **extra},
    }


def code_for(exc: TunnelTuiError) -> str:
    """The wire code of an error raised while serving a request."""
    if isinstance(exc, ProtocolError):
        return exc.code
    if isinstance(exc, SecretsNeeded):
        return SECRETS_NEEDED
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
    if code == BAD_VERSION and reply.get("v") != VERSION:
        agent_version = reply.get("v")
        return AgentVersionMismatch(agent_version if isinstance(agent_version, int) else None)
    if code == SECRETS_NEEDED:
        missing = error.get("missing")
        return SecretsNeeded(message, [str(m) for m in missing or []], hint=hint)
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
