"""`validate` in the agent: the step-by-step check of a connection, run where the keys
are when the caller's only store is the vault the agent holds (an SSH login with no
D-Bus after `tunnel-tui vault unlock`; DESIGN.md, "Where a secret comes from").

The rows come back as a stream on the same connection, as `events` does:

  -> {"op": "validate", "name", "accept_new_host_key": bool, "accept_host_keys": [...],
      "wait_for_key": seconds, "ask_host_key": bool, "ssh_auth_sock": "/path" | null}
  <- {"ok": true, "streaming": true}
  <- {"event": "step", "step": StepResult.to_json()}              (one per row)
  <- {"event": "host-key", "hop": "user@host:port", "fingerprint"} (with ask_host_key)
  -> {"trust": bool}                                               (the caller's answer)
  <- {"event": "end"}

The caller closing its end cancels the validation. No row carries a secret (the
runner's details never do; it is the same stream the CLI prints).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from tunnel_tui.agent import protocol
from tunnel_tui.core import paths
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.known_hosts import parse_fingerprints
from tunnel_tui.core.model import SshEndpoint
from tunnel_tui.core.steps import StepResult, StepStatus

Send = Callable[[dict[str, Any]], Awaitable[None]]
MAX_WAIT = 3600.0


async def stream(service: Any, request: dict[str, Any], reader: asyncio.StreamReader,
                 send: Send) -> None:
    """Serve one `validate` request (agent side). Errors before the first reply raise
    (the server answers them as any op's); after it, the stream just ends."""
    from tunnel_tui import validate as runner
    from tunnel_tui.core.catalog import Catalog
    from tunnel_tui.core.known_hosts import KnownHosts

    request_id = request.get("id")
    name = request.get("name")
    if not isinstance(name, str) or not name:
        raise protocol.ProtocolError("`name` must be a non-empty string")
    conn = service.connection(name)  # NotFoundError for an unknown name
    catalog = Catalog(service.home, service.vault_store())  # the vault, or why not
    sock = request.get("ssh_auth_sock")
    if sock is not None and (not isinstance(sock, str) or not sock.startswith("/")):
        raise protocol.ProtocolError("`ssh_auth_sock` must be an absolute path or null")
    wait = min(max(float(request.get("wait_for_key") or 0.0), 0.0), MAX_WAIT)
    accept = parse_fingerprints(request.get("accept_host_keys") or ())
    answers: asyncio.Queue[bool] = asyncio.Queue()

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        return {"v": protocol.VERSION, "id": request_id, "event": kind, **fields}

    async def ask(hop: SshEndpoint, fingerprint: str) -> bool:
        await send(event("host-key", hop=hop.display, fingerprint=fingerprint))
        return await answers.get()

    async def pump() -> None:
        rows = runner.run(
            conn, catalog,
            accept_new_host_key=bool(request.get("accept_new_host_key")),
            accept_host_keys=accept,
            wait_for_key_seconds=wait,
            on_host_key=ask if request.get("ask_host_key") else None,
            known_hosts=KnownHosts(paths.known_hosts_path(service.home)),
            ssh_auth_sock=sock or "",  # never the agent's own environment's
        )
        async for row in rows:
            await send(event("step", step=row.to_json()))
        await send(event("end"))

    async def listen() -> None:
        while line := await reader.readline():
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict) and "trust" in answer:
                answers.put_nowait(bool(answer["trust"]))

    await send(protocol.ok_reply(request_id, streaming=True))
    tasks = {asyncio.ensure_future(pump()), asyncio.ensure_future(listen())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def validate_in_agent(
    home: Path | None,
    name: str,
    *,
    accept_new_host_key: bool = False,
    accept_host_keys: Collection[str] = (),
    wait_for_key_seconds: float = 0,
    on_host_key: Callable[[str, str], Awaitable[bool]] | None = None,
    ssh_auth_sock: str | None = None,
) -> AsyncIterator[StepResult]:
    """The client side: the rows of a validation the agent runs with the vault it holds.
    `on_host_key(hop display, fingerprint)` answers the agent's host-key questions."""
    from tunnel_tui.agent.client import AsyncAgentClient, _reply

    client = AsyncAgentClient(home)
    reader, writer = await client._open()
    try:
        writer.write(protocol.encode(protocol.request(
            "validate", 1, name=name, accept_new_host_key=accept_new_host_key,
            accept_host_keys=list(accept_host_keys), wait_for_key=wait_for_key_seconds,
            ask_host_key=on_host_key is not None, ssh_auth_sock=ssh_auth_sock,
        )))
        await writer.drain()
        try:
            _reply(await asyncio.wait_for(reader.readline(), client.timeout), client.address)
        except TunnelTuiError as exc:
            from tunnel_tui.agent.keywork import older_agent

            raise older_agent("validate with the keys of its vault", exc) from None
        while line := await reader.readline():
            message = json.loads(line)
            if message.get("ok") is False:
                _reply(line, client.address)  # raises the typed error
            kind = message.get("event")
            if kind == "end":
                return
            if kind == "step":
                step = message["step"]
                yield StepResult(step["step"], StepStatus(step["status"]),
                                 float(step["elapsed_ms"]), step["detail"], step["hint"])
            elif kind == "host-key":
                trust = False
                if on_host_key is not None:
                    trust = await on_host_key(str(message["hop"]), str(message["fingerprint"]))
                writer.write(json.dumps({"trust": trust}).encode() + b"\n")
                await writer.drain()
        raise TunnelTuiError(
            "the agent stopped during the validation",
            hint=f"see {client.address.home / 'logs' / 'agent.log'}, then validate again",
        )
    finally:
        writer.close()
