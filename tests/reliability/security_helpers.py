"""Helpers for the security regression tests (issue 14): hostile in-process servers
and the CLI as a user runs it (a subprocess with the test's home, HOME and keyring)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, Self

import asyncssh

from tests.harness_loop import LoopThread
from tunnel_tui.core.catalog import Catalog, ImportKey


def public_line(key: asyncssh.SSHKey) -> str:
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def run_cli(
    *args: str, env: dict[str, str] | None = None, pre: str = "", timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """`python -m tunnel_tui ARGS` in a subprocess; `pre` is Python run first (e.g. to
    hide a module), then the CLI's own entry point."""
    full = dict(env if env is not None else os.environ)
    if pre:
        code = f"{pre}\nimport sys\nfrom tunnel_tui.entry import main\nmain()"
        argv = [sys.executable, "-c", code, *args]
    else:
        argv = [sys.executable, "-m", "tunnel_tui", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class _ServerInThread:
    """A server on 127.0.0.1 in its own loop thread (so a CLI subprocess reaches it);
    a subclass starts it in `_start`. A context manager: listening inside the `with`."""

    host = "127.0.0.1"

    def __init__(self, thread_name: str) -> None:
        self._thread = LoopThread(thread_name)
        self._server: Any = None  # an asyncio.Server or asyncssh.SSHAcceptor
        self.port = 0

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def __enter__(self) -> Self:
        self._thread.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._thread.run(self._stop())
        finally:
            self._thread.close()


class _TcpServer(_ServerInThread):
    """A plain TCP server; the subclass answers each connection in `_handle`."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]


class HostileSsh(_ServerInThread):
    """An in-process asyncssh server (own loop thread, so a CLI subprocess reaches it).

    `host_keys` are what it presents (keys or (key, certificate) pairs); `client_key`
    is accepted for any user. `server_factory` may return a custom SSHServer; other
    `create_server` arguments go in `options`.
    """

    user = "tt-user"

    def __init__(
        self,
        host_keys: Sequence[Any] | None = None,
        server_factory: Callable[[], asyncssh.SSHServer] | None = None,
        **options: Any,
    ) -> None:
        super().__init__("hostile-ssh")
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_keys = list(host_keys) if host_keys is not None else [self.host_key]
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_pem = self.client_key.export_private_key("openssh")
        self._factory = server_factory or asyncssh.SSHServer
        self._options = options

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    async def _start(self) -> None:
        self._server = await asyncssh.create_server(
            self._factory, self.host, 0, server_host_keys=self.host_keys,
            authorized_client_keys=asyncssh.import_authorized_keys(
                public_line(self.client_key)),
            **self._options,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def add_connection(self, name: str = "c1", db: str = "postgresql://u@127.0.0.1:1/db",
                       jumps: Sequence[str] = ()) -> str:
        """Configure a connection through this server (the key goes to the keyring)."""
        Catalog().add(name, db, f"ssh://{self.user}@{self.host}:{self.port}", jumps=jumps,
                      key=ImportKey(self.client_pem, None))
        return name


# A fake agent: listens on a Unix socket, prints "ready", answers every request line
# like an agent would, and prints how many bytes each connection sent.
_IMPOSTOR = r"""
import os, socket, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o666)
srv.listen(8)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    conn.settimeout(10)
    got = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
            if b"\n" in chunk:
                conn.sendall(b'{"ok": true, "id": 1, "tunnels": []}\n')
    except OSError:
        pass
    conn.close()
    print(f"received {len(got)}", flush=True)
"""


class Impostor:
    """A fake agent run as another user (`setpriv` to `uid`), listening at `path`."""

    def __init__(self, path: str, uid: int, gid: int) -> None:
        self.path = path
        self.leftover = ""
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
             "/usr/bin/python3", "-c", _IMPOSTOR, path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the script prints it or exits
        assert line.strip() == "ready", (line, self.proc.stderr.read() if self.proc.stderr else "")

    def received(self) -> int:
        """Bytes the next finished connection sent (waits for its line)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("received "), line
        return int(line.split()[1])

    def stop(self) -> str:
        """Stop it; returns what it printed and nobody read yet."""
        if self.proc.returncode is None:
            self.proc.kill()  # our own child, by its handle
            self.proc.wait(10)
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self.leftover = self.proc.stdout.read()
            self.proc.stdout.close()
            self.proc.stderr.close()
        return self.leftover


class ResetAtKeyExchange(_TcpServer):
    """A TCP server that sends an SSH banner, reads the client's first packets and then
    resets the connection: a handshake that fails at the host-key step (an attacker
    on the path can cause this at will)."""

    user = "tt-user"

    def __init__(self) -> None:
        super().__init__("reset-at-kex")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_pem = self.client_key.export_private_key("openssh")
        self.connections = 0

    async def _handle(self, reader: Any, writer: Any) -> None:
        import socket
        import struct

        self.connections += 1
        writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        try:
            await reader.readuntil(b"\n")  # the client's banner
            await reader.read(1)  # the start of its KEXINIT
        except Exception:  # noqa: BLE001 - whatever the client did, reset
            pass
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST

    def add_connection(self, name: str = "c1", db: str = "postgresql://u@127.0.0.1:1/db") -> str:
        Catalog().add(name, db, f"ssh://{self.user}@{self.host}:{self.port}",
                      key=ImportKey(self.client_pem, None))
        return name


# What a hostile server puts in its words: a window title (OSC 0), a clipboard write
# (OSC 52: the next paste into a shell runs `touch /tmp/pwn`), a screen clear (CSI)
# and the same CSI as one C1 byte.
HOSTILE = "boom\x1b]0;pwned title\x07 \x1b]52;c;dG91Y2ggL3RtcC9wd24K\x07 \x1b[2J\x9b31m end"
RAW_CONTROLS = ("\x1b", "\x9b", "\x07")


class HostilePostgres(_TcpServer):
    """Just enough of the PostgreSQL protocol to refuse every login with an
    ErrorResponse (SQLSTATE XX000) whose message is `HOSTILE`."""

    def __init__(self, message: str = HOSTILE) -> None:
        super().__init__("hostile-pg")
        self.message = message

    async def _handle(self, reader: Any, writer: Any) -> None:
        import struct

        try:
            for _ in range(3):  # SSLRequest / GSSENCRequest, then the StartupMessage
                length, code = struct.unpack(">II", await reader.readexactly(8))
                await reader.readexactly(length - 8)
                if code in (80877103, 80877104):
                    writer.write(b"N")
                    await writer.drain()
                    continue
                break
            fields = b"".join(
                kind + value.encode() + b"\0"
                for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "XX000"),
                                    (b"M", self.message))
            ) + b"\0"
            writer.write(b"E" + struct.pack(">I", len(fields) + 4) + fields)
            await writer.drain()
        except Exception:  # noqa: BLE001 - a client that went away
            pass
        writer.close()

