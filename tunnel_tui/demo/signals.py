"""Ending the sandbox cleanly on SIGHUP (its terminal closed) and SIGTERM.

Left to their default action, both signals kill the process at once: the
sandbox's agent (in its own session, so the hangup does not reach it) and its
temporary home outlive it. Here a signal instead ends the app the way `q` does,
so the `with sandbox()` block around it stops the agent and removes the home;
before the app runs, it unwinds the set-up the same way. While the clean-up runs,
further signals are ignored: it must finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol

SIGNALS = (signal.SIGHUP, signal.SIGTERM)


class _Exitable(Protocol):
    def exit(self, *args: Any, **kwargs: Any) -> None: ...


class Ending:
    """What a signal ends: the running app if there is one, else the set-up."""

    def __init__(self) -> None:
        self.app: _Exitable | None = None
        self.cleaning_up = False
        self.signalled: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signalled is None
        self.signalled = signum
        if self.cleaning_up or not first:
            return  # the clean-up is running or about to: let it finish
        app = self.app
        if app is None:
            raise SystemExit(128 + signum)  # setting up: unwind, the with-blocks clean up
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the app's loop is not running (yet, or any more)
            raise SystemExit(128 + signum) from None
        # The handler runs on the loop's thread between two steps of the loop; the
        # thread-safe call is what wakes the loop's select() to run the exit.
        loop.call_soon_threadsafe(app.exit)


@contextlib.contextmanager
def ending_on_signals() -> Iterator[Ending]:
    ending = Ending()
    previous = {signum: signal.signal(signum, ending.handle) for signum in SIGNALS}
    try:
        yield ending
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
