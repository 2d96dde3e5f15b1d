"""Running a probe and looking at what a user would see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tunnel_tui.core.model import Database, DbKind
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.steps import StepResult
from tunnel_tui.probes.base import probe_for


async def run_probe(
    kind: DbKind,
    port: int,
    *,
    user: str = "",
    database: str = "",
    password: str | None = None,
    host: str = "127.0.0.1",
    db_host: str = "127.0.0.1",
    options: dict[str, str] | None = None,
    timeout: float = 10.0,
    name: str | None = "mydb",
) -> dict[str, StepResult]:
    db = Database(kind, db_host, port, database, user, tuple(sorted((options or {}).items())))
    secret = Secret(password) if password is not None else None
    results: dict[str, StepResult] = {}
    async for result in probe_for(kind).check(
        host=host, port=port, database=db, password=secret, timeout=timeout, name=name
    ):
        assert result.step not in results, f"step {result.step} reported twice"
        results[result.step] = result
    if password:
        for result in results.values():
            text = f"{result.detail} {result.hint or ''}"
            assert password not in text, f"the password leaked into {result.step}"
    return results


def statuses(results: dict[str, StepResult]) -> dict[str, str]:
    return {step: result.status.value for step, result in results.items()}


# Small real servers showing the ways a plain-HTTP port can meet a TLS hello (the
# ClickHouse and Trino probes' `secure`/`ssl` on the wrong port).
TLS_HANDSHAKE_RECORD = 0x16
TLS_ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"
NGINX_PLAIN_ON_HTTPS = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
    b"<center>The plain HTTP request was sent to HTTPS port</center>"
)


@asynccontextmanager
async def plain_http_server(on_tls_hello: str) -> AsyncIterator[int]:
    """A server on loopback. "wait" and "close": plain HTTP (`GET /` gets 200) meeting
    a TLS hello by waiting for more or by closing. "tls": a TLS-only port as nginx
    runs one, refusing our handshake and answering plain HTTP with its 400."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(1)
        if first and first[0] == TLS_HANDSHAKE_RECORD:
            if on_tls_hello == "wait":
                held.append(writer)  # closed when the server stops
                return
            if on_tls_hello == "tls":
                writer.write(TLS_ALERT_HANDSHAKE_FAILURE)
                await writer.drain()
            writer.close()
            return
        await reader.readuntil(b"\r\n\r\n")
        if on_tls_hello == "tls":
            writer.write(NGINX_PLAIN_ON_HTTPS)
        else:
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nOk.")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
