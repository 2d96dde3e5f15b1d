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


class PlainHttpPort(Exception):
    """A TLS handshake went to a port that speaks plain HTTP."""


# How long a TLS handshake may stay silent before a plain HTTP request is tried
# alongside it. A TLS server answers a hello within a round trip; a plain HTTP
# server either rejects the hello at once (an SSLError) or waits for a request
# line that never comes, which would otherwise cost the whole timeout.
PLAIN_HTTP_CHECK_AFTER = 1.0


async def open_stream(
    host: str, port: int, ctx: ssl.SSLContext | None, server_name: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if ctx is None:
        return await asyncio.open_connection(host, port)
    return await asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_name)


async def open_tls(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    server_name: str,
    *,
    check_after: float = PLAIN_HTTP_CHECK_AFTER,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TLS stream, or raise `PlainHttpPort` when the port answers plain HTTP
    instead: checked when the handshake fails, and alongside it once it has stayed
    silent for `check_after` seconds. The caller bounds the whole with a timeout."""
    handshake = asyncio.ensure_future(open_stream(host, port, ctx, server_name))
    plain: asyncio.Future[bool] | None = None
    try:
        done, _ = await asyncio.wait({handshake}, timeout=check_after)
        if not done:
            plain = asyncio.ensure_future(answers_plain_http(host, port, server_name))
            await asyncio.wait({handshake, plain}, return_when=asyncio.FIRST_COMPLETED)
            if not handshake.done() and plain.result():
                raise PlainHttpPort(f"{host}:{port} answers plain HTTP, not TLS")
        try:
            return await handshake
        except ssl.SSLCertVerificationError:
            raise  # a TLS server with a certificate we refuse
        except OSError as exc:  # includes ssl.SSLError
            if plain is None:
                plain = asyncio.ensure_future(answers_plain_http(host, port, server_name))
            if await plain:
                raise PlainHttpPort(f"{host}:{port} answers plain HTTP, not TLS") from exc
            raise
    finally:
        for task in (handshake, plain):
            if task is not None and not task.done():
                task.cancel()


async def answers_plain_http(
    host: str, port: int, server_name: str, *, timeout: float = 5.0
) -> bool:
    """Whether the port answers a plain `GET /` with HTTP, and not with a TLS
    server's "plain HTTP request was sent to HTTPS port" (nginx and others)."""
    writer: asyncio.StreamWriter | None = None
    answer = b""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await open_stream(host, port, None, server_name)
            writer.write(f"GET / HTTP/1.0\r\nHost: {server_name}\r\n\r\n".encode("latin-1"))
            await writer.drain()
            answer = await reader.read(2048)
        # The rest of a short answer, unless the server keeps the connection open.
        while answer and len(answer) < 2048:
            chunk = await asyncio.wait_for(reader.read(2048 - len(answer)), 0.5)
            if not chunk:
                break
            answer += chunk
    except (OSError, TimeoutError):
        pass
    finally:
        if writer is not None:
            await close(writer)
    return answer.startswith(b"HTTP/") and b"HTTPS port" not in answer


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
