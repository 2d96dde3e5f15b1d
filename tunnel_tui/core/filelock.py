"""An exclusive advisory lock on a sidecar file, for read-modify-write of the config
by several processes (CLI, TUI, agent, rotation). Bounded wait, never forever."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunnel_tui.core.errors import ConfigError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_held = threading.local()


@contextmanager
def locked(path: Path, *, timeout: float = 10.0) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created 0600) for the block.

    flock locks belong to the open file description: threads of one process exclude
    each other like processes do, and nesting in one thread would wait on itself, so
    that is refused at once (a programming error, not a user's).
    """
    held: set[str] = getattr(_held, "paths", set())
    _held.paths = held
    key = str(path)
    if key in held:
        raise RuntimeError(f"{path} is already locked by this thread (nested config.update?)")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the lock file {path}: {exc.strerror}",
            hint="it must be a regular file (not a symbolic link) in a directory you own",
        ) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"another tunnel-tui process holds {path} for more than {timeout:g} s",
                        hint="try again; if it persists, look for a stuck tunnel-tui process",
                    ) from None
                # Polling: a blocking flock could not be bounded in time.
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # closing releases the lock
