"""A small SSH bastion for the sandbox: asyncssh on 127.0.0.1:<free port>, in its own
thread and event loop, with its own host key.

Like a real bastion it reads `~/.ssh/authorized_keys` (of its own sandbox home) at
every login, serves SFTP inside that home (so key rotation can install keys), and
forwards only to loopback targets. No shell.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import asyncssh

from tunnel_tui.core import paths

LOOPBACK = ("127.0.0.1", "localhost", "::1")
USER = "sandbox"


def _public_line(key: asyncssh.SSHKey) -> str:
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


class SandboxBastion:
    host = "127.0.0.1"
    user = USER

    def __init__(self, home: Path) -> None:
        self.home = paths.ensure_private_dir(home)
        paths.ensure_private_dir(self.home / ".ssh")
        self.authorized_keys = self.home / ".ssh" / "authorized_keys"
        self.authorized_keys.touch(mode=0o600)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_public_line = _public_line(self.host_key)
        self.host_fingerprint: str = self.host_key.get_fingerprint("sha256")
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox-bastion",
                                        daemon=True)
        self._server: asyncssh.SSHAcceptor | None = None
        self._conns: set[asyncssh.SSHServerConnection] = set()

    # -- lifecycle -----------------------------------------------------------------
    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def start(self) -> None:
        self._thread.start()
        self._run(self._start())

    def close(self) -> None:
        if self._thread.is_alive():
            try:
                self._run(self._stop())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=5)

    def authorize(self, public_line: str) -> None:
        """Append a key line (read again at every login)."""
        with self.authorized_keys.open("a") as f:
            f.write(public_line.strip() + "\n")

    # -- the server ----------------------------------------------------------------
    def _factory(self) -> asyncssh.SSHServer:
        bastion = self

        class _Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn
                bastion._conns.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                bastion._conns.discard(self._conn)

            def begin_auth(self, username: str) -> bool:
                # Read the file at every login, as sshd does, so installed keys work at once.
                text = bastion.authorized_keys.read_text()
                if text.strip():
                    self._conn.set_authorized_keys(asyncssh.import_authorized_keys(text))
                return True

            def password_auth_supported(self) -> bool:
                return False

            def connection_requested(
                self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
            ) -> bool:
                if dest_host not in LOOPBACK:
                    raise asyncssh.ChannelOpenError(
                        asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                        "the sandbox bastion forwards to this machine only",
                    )
                return True

        return _Server()

    def _sftp(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=str(self.home).encode())

    async def _start(self) -> None:
        self._server = await asyncssh.create_server(
            self._factory,
            self.host,
            0,
            server_host_keys=[self.host_key],
            sftp_factory=self._sftp,
            allow_scp=False,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self._conns):
                conn.abort()
            await self._server.wait_closed()
            self._server = None
