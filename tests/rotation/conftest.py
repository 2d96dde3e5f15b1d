"""Fixtures of the rotation tests: a Catalog on the keyring, bastions holding its key."""

from __future__ import annotations

from collections.abc import Sequence
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
        jumps: Sequence[Any] = (),
    ) -> Key:
        """A connection through `jumps` to `server`; its key is authorized on each of them
        (with `options`) and their host keys trusted."""
        choice = ReuseKey(reuse) if reuse else GenerateKey()
        result = self.catalog.add(
            name,
            f"postgresql://app@127.0.0.1:{db_port}/appdb",
            _url(server),
            jumps=[_url(j) for j in jumps],
            key=choice,
        )
        for each in (*jumps, server):
            trust(self.known_hosts, each.host, each.port, each.host_public_key)
            text = each.authorized_keys_path.read_text()
            if result.key.public_key.split()[1] not in text:
                each.authorize(f"{result.key.public_key} tunnel-tui:{result.key.name}", options)
        return result.key


def _url(server: Any) -> str:
    return f"ssh://{server.user}@{server.host}:{server.port}"


@pytest.fixture
def world(isolated_env: Any, secret_service: Any) -> RotationWorld:
    home = Path(isolated_env.home)
    return RotationWorld(Catalog(home), make_known_hosts(), home)
