"""RealServices reads the config once at start-up: the prefetch started while the app
draws its first frame, and the first screen's ask, share one parse."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.fixtures.waiting import wait_until
from tunnel_tui.core import config as config_mod
from tunnel_tui.ui.services import RealServices


def test_the_first_screen_reuses_the_prefetched_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_mod.save(config_mod.load(tmp_path), tmp_path)
    real_load = config_mod.load
    parses: list[str] = []
    second = threading.Event()

    def load(home: Path | None = None) -> config_mod.Config:
        parses.append(threading.current_thread().name)
        if len(parses) == 1:
            second.wait(timeout=1.0)  # a slow parse (1,000 connections): room for a 2nd
        else:
            second.set()
        return real_load(home)

    monkeypatch.setattr(config_mod, "load", load)
    services = RealServices(tmp_path)
    services.prefetch()
    wait_until(lambda: parses, timeout=5.0, what="the prefetch to start parsing")
    assert services.connections() == []  # what statuses() asks first, from a thread
    assert parses == ["config-prefetch"]
