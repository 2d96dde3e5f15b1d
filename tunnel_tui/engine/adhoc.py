"""A temporary local forward over an SSH connection we already hold (validation's
probes, rotation checks): a 127.0.0.1 listener on a free port, closed on exit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncssh

from tunnel_tui.engine.errors import ChannelOpenFailed
from tunnel_tui.engine.forward import Counters, LocalClient
from tunnel_tui.engine.listener import LocalListener
from tunnel_tui.engine.settings import EngineSettings


class _Link:
    """The slice of `pool.SshLink` a forwarded client uses."""

    def __init__(self, bastion: asyncssh.SSHClientConnection) -> None:
        self.bastion = bastion
        self.alive = True
        self.channels = 0

    def channel_opened(self) -> None:
        self.channels += 1

    def channel_closed(self) -> None:
        self.channels -= 1


class TemporaryForward:
    def __init__(
        self, bastion: asyncssh.SSHClientConnection, host: str, port: int,
        settings: EngineSettings,
    ) -> None:
        self.target_host = host
        self.target_port = port
        self.counters = Counters()
        self.window = settings.window
        self.max_pktsize = settings.max_pktsize
        self.link = _Link(bastion)
        self.clients: set[LocalClient] = set()
        self.errors: list[ChannelOpenFailed] = []

    def current_link(self) -> _Link | None:
        return self.link if self.link.alive else None

    def client_opened(self, client: LocalClient) -> None:
        self.clients.add(client)

    def client_closed(self, client: LocalClient) -> None:
        self.clients.discard(client)

    def channel_failed(self, error: ChannelOpenFailed) -> None:
        self.errors.append(error)

    def channel_succeeded(self) -> None:
        pass


@contextlib.asynccontextmanager
async def temporary_forward(
    bastion: asyncssh.SSHClientConnection, host: str, port: int,
    settings: EngineSettings | None = None,
) -> AsyncIterator[tuple[int, TemporaryForward]]:
    owner = TemporaryForward(bastion, host, port, settings or EngineSettings())
    listener = LocalListener("127.0.0.1", 0, lambda: LocalClient(owner))
    local_port = await listener.start()
    try:
        yield local_port, owner
    finally:
        owner.link.alive = False
        await listener.close()
        for client in list(owner.clients):
            client.abort()
