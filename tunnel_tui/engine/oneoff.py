"""`async with Tunnel(conn, keys, known_hosts) as t: t.local_port` for one-off use."""

from __future__ import annotations

from collections.abc import Mapping

from tunnel_tui.core.model import Connection
from tunnel_tui.core.secret import Secret
from tunnel_tui.core.status import TunnelStatus
from tunnel_tui.engine.service import TunnelEngine
from tunnel_tui.engine.settings import EngineSettings
from tunnel_tui.engine.ssh import KnownHostsLike


class Tunnel:
    """One tunnel with its own engine; closed (port released) on exit."""

    def __init__(
        self,
        conn: Connection,
        keys: Mapping[str, Secret],
        known_hosts: KnownHostsLike,
        *,
        settings: EngineSettings | None = None,
        accept_new_host_key: bool = False,
    ) -> None:
        self.conn = conn
        self.engine = TunnelEngine(known_hosts, settings)
        self._keys = keys
        self._accept_new = accept_new_host_key
        self.local_port: int = 0
        self.local_host = conn.local_host

    @property
    def status(self) -> TunnelStatus:
        return self.engine.status(self.conn.name)

    async def __aenter__(self) -> Tunnel:
        try:
            status = await self.engine.start(
                self.conn, self._keys, accept_new_host_key=self._accept_new
            )
        except BaseException:
            await self.engine.aclose()
            raise
        assert status.local_port is not None
        self.local_port = status.local_port
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.aclose()
