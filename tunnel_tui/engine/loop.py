"""uvloop when installed: the agent and the CLI call this before starting a loop."""

from __future__ import annotations

import asyncio


def install_uvloop() -> bool:
    """Make uvloop the event loop policy; False (and nothing changed) when unavailable."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
