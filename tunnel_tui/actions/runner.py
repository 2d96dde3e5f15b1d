"""Running an async action from blocking code (the CLI): on uvloop when installed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the engine's preferred event loop."""
    from tunnel_tui.engine.loop import install_uvloop

    install_uvloop()
    return asyncio.run(main)
