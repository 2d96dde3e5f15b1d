"""A deliberately tiny HTTP/1.0 client for the HTTP-speaking probes (ClickHouse,
Trino): one request per connection, `Connection: close`, body read to EOF with a
size cap. HTTP/1.0 keeps the server from chunking, so nothing more is needed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HttpProtocolError(Exception):
    """The peer did not answer with HTTP."""


async def open_stream(
    host: str, port: int, ctx: ssl.SSLContext | None, server_name: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if ctx is None:
        return await asyncio.open_connection(host, port)
    return await asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_name)


async def request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    *,
    host_header: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host_header}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise HttpProtocolError("response headers too long") from exc
    except asyncio.IncompleteReadError as exc:
        raise HttpProtocolError("the server closed the connection without an HTTP answer") from exc
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpProtocolError(f"not an HTTP answer: {status_line[:60]!r}")
    parsed: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            key, value = line.split(":", 1)
            parsed[key.strip().lower()] = value.strip()
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY:
        chunk = await reader.read(MAX_BODY - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", parsed, body)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (OSError, TimeoutError, ssl.SSLError):
        pass


def tls_info(writer: asyncio.StreamWriter) -> Any:
    return writer.get_extra_info("ssl_object")
