"""`key-work`: SSH work that needs a private key only the agent can read.

When the caller's only store is the vault this agent holds unlocked (an SSH login with
no D-Bus after `tunnel-tui vault unlock`), the caller cannot read a key, and the agent
never hands one out (DESIGN.md, "Where a secret comes from"). So rotation's SSH steps
(check, install, verify, remove-old, rollback) and `remove`'s bastion cleanup ask the
agent to do the login here, with the keys of the vault, and get back only what happened:

  key-work {"action": "login", "hops": [HOP...]}             -> {"accepted": bool}
           {"action": "add-line", "hops", "line", "like"}    -> {"method": "sftp"|"exec"}
                                                                | {"manual": {"message", "hint"}}
           {"action": "remove-lines", "hops", "public_keys"} -> {"removed": [LineRemoval]}
           {"action": "meet-host-keys", "hops", "accept_new", "accept_keys"}
                                    -> {"hops": [{"fingerprint", "host_key", "error"}]}
  HOP = {"host", "user", "port", "key_id"}; optional "connect_timeout" (s).

Only the vault: an agent that reads a desktop keyring is not a door into it (as
`secret-set`). `add-line` adds only the line of a key in this home's config (the
rotation's new key), never a line a client made up. The host keys are this home's
known_hosts, as for `up`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunnel_tui.agent.protocol import USAGE, ProtocolError
from tunnel_tui.core import paths
from tunnel_tui.core.errors import TunnelTuiError, UsageError
from tunnel_tui.core.model import SshEndpoint
from tunnel_tui.core.secret import Secret

ACTIONS = ("login", "add-line", "remove-lines", "meet-host-keys")
MAX_HOPS = 8
MAX_LINES = 16


def older_agent(op: str, exc: TunnelTuiError) -> TunnelTuiError:
    """An agent started from an older tunnel-tui answers `unknown op` to `key-work` and
    `validate`: say so, with the fix (the other error as it was)."""
    if isinstance(exc, UsageError) and exc.message.startswith("unknown op"):
        return TunnelTuiError(
            f"the running agent is older and cannot {op}",
            hint="tunnel-tui agent restart (its tunnels go down and come back with up)",
        )
    return exc


def hops_to_json(hops: Sequence[SshEndpoint]) -> list[dict[str, Any]]:
    return [{"host": h.host, "user": h.user, "port": h.port, "key_id": h.key_id} for h in hops]


def _hops(raw: Any) -> tuple[SshEndpoint, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_HOPS:
        raise ProtocolError(f"`hops` must be a list of 1 to {MAX_HOPS} hops")
    hops = []
    for item in raw:
        if not isinstance(item, dict):
            raise ProtocolError("each hop must be an object")
        host, user, port, key_id = (item.get(k) for k in ("host", "user", "port", "key_id"))
        if not (isinstance(host, str) and host and isinstance(user, str) and user
                and isinstance(port, int) and 0 < port < 65536
                and isinstance(key_id, str) and key_id):
            raise ProtocolError("a hop needs host, user, port (1-65535) and key_id")
        hops.append(SshEndpoint(host, user, port, key_id))
    return tuple(hops)


def _text(request: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = request.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > 16384:
        raise ProtocolError(f"`{key}` must be a non-empty string")
    return value


def _read_keys(home: Path, store: Any, key_ids: set[str]) -> dict[str, Secret]:
    from tunnel_tui.core.catalog import Catalog

    catalog = Catalog(home, store)
    return {key_id: catalog.private_key(key_id) for key_id in key_ids}


def _ours(home: Path, line: str) -> None:
    """Refuse a line whose key is not one of this home's keys."""
    from tunnel_tui.core import config
    from tunnel_tui.core.authorized_keys_file import blob_of

    try:
        blob = blob_of(line)
    except ValueError:
        raise ProtocolError("`line` is not an authorized_keys line") from None
    keys = config.load(home).keys.values()
    if not any(blob_of(key.public_key) == blob for key in keys if key.public_key):
        raise ProtocolError("`line` must hold one of this home's keys", code=USAGE)


async def run(home: Path, store: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Do one `key-work` request with the private keys of `store` (the vault)."""
    from tunnel_tui.core.known_hosts import KnownHosts
    from tunnel_tui.engine import key_lines
    from tunnel_tui.engine.authorized_keys import ManualInstallRequired

    action = request.get("action")
    if action not in ACTIONS:
        raise ProtocolError(f"`action` must be one of {', '.join(ACTIONS)}")
    hops = _hops(request.get("hops"))
    try:
        timeout = min(max(float(request.get("connect_timeout") or 20.0), 1.0), 120.0)
    except (TypeError, ValueError):
        raise ProtocolError("`connect_timeout` must be a number") from None
    keys = await asyncio.to_thread(_read_keys, home, store, {h.key_id or "" for h in hops})
    known_hosts = KnownHosts(paths.known_hosts_path(home))
    if action == "login":
        works = await key_lines.login_works(hops, keys.__getitem__, known_hosts, timeout=timeout)
        return {"accepted": works}
    if action == "add-line":
        line = _text(request, "line")
        assert line is not None
        await asyncio.to_thread(_ours, home, line)
        try:
            method = await key_lines.add_line(
                hops, keys.__getitem__, known_hosts, line,
                like=_text(request, "like", optional=True), timeout=timeout,
            )
        except ManualInstallRequired as exc:
            return {"manual": {"message": exc.message, "hint": exc.hint}}
        return {"method": method}
    if action == "meet-host-keys":  # `add --accept-host-key` (actions/host_keys.py)
        from tunnel_tui.core.known_hosts import parse_fingerprints
        from tunnel_tui.engine.settings import EngineSettings
        from tunnel_tui.engine.ssh import meet_host_keys

        traces = await meet_host_keys(
            hops, keys, known_hosts, accept_new=bool(request.get("accept_new")),
            accept_keys=parse_fingerprints(request.get("accept_keys") or ()),
            settings=EngineSettings(connect_timeout=timeout),
        )
        return {"hops": [
            {"fingerprint": t.fingerprint, "host_key": t.host_key,
             "error": "" if t.host_key else t.error} for t in traces
        ]}
    publics = request.get("public_keys")
    if not (isinstance(publics, list) and 0 < len(publics) <= MAX_LINES
            and all(isinstance(p, str) and p for p in publics)):
        raise ProtocolError(f"`public_keys` must list 1 to {MAX_LINES} public keys")
    removed = await key_lines.remove_lines(
        hops, keys.__getitem__, known_hosts, publics, timeout=timeout
    )
    return {"removed": [r.to_json() for r in removed]}
