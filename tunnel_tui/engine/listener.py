"""Our own local listener: 127.0.0.1 (and ::1 on the same port where available).

Never all interfaces. Port 0 picks a free port (reported); a port in use is a
LocalPortInUse naming the port and, when we can tell, the process holding it, with
nothing left bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path

from tunnel_tui.core.errors import UsageError
from tunnel_tui.engine.errors import LocalPortInUse

_IPV6_UNAVAILABLE = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT}


def _bind(family: int, host: str, port: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets us rebind a port whose old connections sit in TIME_WAIT (a restart);
        # on Linux it never lets two listeners share a port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # worker processes of one tunnel share it (same user only)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def who_listens(port: int) -> str | None:
    """"name (pid N)" of a local process listening on `port`, best effort (Linux /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    proc = Path("/proc")
    for pid_dir in list(proc.iterdir())[:10000]:  # bounded scan
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in targets:
                    name = (pid_dir / "comm").read_text().strip()
                    return f"{name} (pid {pid_dir.name})"
        except OSError:
            continue
    return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _in_use(host: str, port: int, name: str | None) -> LocalPortInUse:
    holder = who_listens(port)
    by = f" by {holder}" if holder else ""
    return LocalPortInUse(
        f"local port {port} on {host} is already in use{by}",
        port=port,
        hint="stop that program, or give this connection another local port "
        f"(tunnel-tui edit {name or 'NAME'} --local-port N, or auto)",
    )


class LocalListener:
    """Accepts local clients; `protocol_factory` builds one forwarding protocol each."""

    def __init__(
        self, host: str, port: int, protocol_factory: Callable[[], asyncio.Protocol],
        *, name: str | None = None, reuse_port: bool = False,
    ) -> None:
        self.name = name  # the connection's, for copy-pasteable hints
        self.reuse_port = reuse_port
        self.host = host
        self.port = port
        self._factory = protocol_factory
        self._servers: list[asyncio.Server] = []

    async def start(self) -> int:
        if not _is_loopback(self.host):
            raise UsageError(
                f"refusing to listen on {self.host}: tunnels bind loopback only",
                hint="use 127.0.0.1 (the default)", field="local_host",
            )
        socks = self._bind_all()
        loop = asyncio.get_running_loop()
        try:
            for sock in socks:
                self._servers.append(await loop.create_server(self._factory, sock=sock))
        except BaseException:
            for sock in socks:
                sock.close()
            await self.close()
            raise
        return self.port

    def _bind_all(self) -> list[socket.socket]:
        tries = 20 if self.port == 0 else 1
        for _ in range(tries):
            try:
                first = _bind(socket.AF_INET, self.host, self.port, self.reuse_port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise _in_use(self.host, self.port, self.name) from None
                raise
            port = first.getsockname()[1]
            if self.host != "127.0.0.1":
                self.port = port
                return [first]
            try:
                second = _bind(socket.AF_INET6, "::1", port, self.reuse_port)
            except OSError as exc:
                if exc.errno in _IPV6_UNAVAILABLE:
                    self.port = port
                    return [first]
                first.close()
                if exc.errno == errno.EADDRINUSE and self.port == 0:
                    continue  # [::1]:port taken by someone else: pick another port
                if exc.errno == errno.EADDRINUSE:
                    # Clients resolving localhost to ::1 would reach the other program.
                    raise _in_use("::1", self.port, self.name) from None
                raise
            self.port = port
            return [first, second]
        raise LocalPortInUse("no free local port found", port=0)

    @property
    def sockets(self) -> list[tuple[str, int]]:
        out = []
        for server in self._servers:
            for sock in server.sockets:
                out.append(sock.getsockname()[:2])
        return out

    async def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
