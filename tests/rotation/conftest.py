"""Fixtures of the rotation tests: a Catalog on the keyring, bastions holding its key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.engine import make_known_hosts, trust
from tunnel_tui.core.catalog import Catalog, GenerateKey, ReuseKey
from tunnel_tui.core.model import Key


@dataclass
class RotationWorld:
    catalog: Catalog
    known_hosts: Any
    home: Path

    def add(
        self,
        name: str,
        server: Any,
        *,
        reuse: str | None = None,
        options: str | None = None,
        db_port: int = 5432,
    ) -> Key:
        """A connection through `server`; its key is authorized there (with `options`)."""
        choice = ReuseKey(reuse) if reuse else GenerateKey()
        result = self.catalog.add(
            name,
            f"postgresql://app@127.0.0.1:{db_port}/appdb",
            f"ssh://{server.user}@{server.host}:{server.port}",
            key=choice,
        )
        trust(self.known_hosts, server.host, server.port, server.host_public_key)
        text = server.authorized_keys_path.read_text()
        if result.key.public_key.split()[1] not in text:
            server.authorize(f"{result.key.public_key} tunnel-tui:{result.key.name}", options)
        return result.key


@pytest.fixture
def world(isolated_env: Any, secret_service: Any) -> RotationWorld:
    home = Path(isolated_env.home)
    return RotationWorld(Catalog(home), make_known_hosts(), home)
