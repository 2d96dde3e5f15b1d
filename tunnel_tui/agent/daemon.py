"""The agent process: one per user and home, found through a lock file.

Life cycle: take `run/agent.lock` (flock, held until exit: a second agent for the
same home sees it and steps aside), remove any socket left by a killed agent,
serve, and on SIGTERM/SIGINT/`shutdown` close every tunnel and remove the socket.
Logs go to `logs/agent.log` (rotated, redacted); files are created 0600.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path

from tunnel_tui.agent.address import AgentAddress, ensure_socket_dir, resolve
from tunnel_tui.core import paths
from tunnel_tui.core.errors import TunnelTuiError
from tunnel_tui.core.logging import install_redaction

log = logging.getLogger("tunnel_tui.agent")

HOUSEKEEPING_INTERVAL = 2.0


class AgentAlreadyRunning(TunnelTuiError):
    pass


def acquire_lock(address: AgentAddress) -> int:
    """The agent's lock fd; AgentAlreadyRunning if another agent holds it."""
    fd = os.open(address.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AgentAlreadyRunning(
            f"an agent is already running for {address.home} (pid {read_pid(address) or '?'})",
            hint="`tunnel-tui status` talks to it",
        ) from None
    return fd


def lock_is_free(address: AgentAddress) -> bool:
    """True when no agent holds this home's lock (so any socket there is stale)."""
    try:
        fd = os.open(address.lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def read_pid(address: AgentAddress) -> int | None:
    try:
        return int(address.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def setup_logging(home: Path, *, to_stderr: bool, level: int = logging.INFO) -> None:
    directory = paths.ensure_private_dir(paths.log_dir(home))
    handler = logging.handlers.RotatingFileHandler(
        directory / "agent.log", maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handlers: list[logging.Handler] = [handler]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for each in handlers:
        each.setFormatter(fmt)
        root.addHandler(install_redaction(each))
    root.setLevel(level)
    # asyncssh logs every packet at DEBUG; INFO is plenty for an agent log.
    logging.getLogger("asyncssh").setLevel(max(level, logging.WARNING))


PR_SET_DUMPABLE = 4  # linux/prctl.h


def disable_core_dumps() -> None:
    """The agent holds private keys in memory: no core file may ever carry them, and
    no other process of ours may read its memory (ptrace, /proc/PID/mem). RLIMIT_CORE 0
    everywhere; on Linux also PR_SET_DUMPABLE 0 (which covers a core_pattern pipe that
    ignores the rlimit, and makes /proc/PID/{mem,environ,maps} root's)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())


def install_fast_loop() -> bool:
    """uvloop by default (TUNNEL_TUI_UVLOOP=0 opts out); False when asyncio stays.

    The engine's forward protocol takes any transport with asyncio's interface
    (uvloop's are not asyncio.Transport subclasses); tests/engine/test_agent_uvloop.py
    checks an agent-held tunnel under it. uvloop roughly halves the forwarder's CPU
    per transaction with aes128-gcm (PERF.md, docs/PERF-WORK.md).
    """
    if os.environ.get("TUNNEL_TUI_UVLOOP", "1").strip() == "0":
        return False
    from tunnel_tui.engine.loop import install_uvloop  # uvloop itself stays optional

    return install_uvloop()


async def serve(address: AgentAddress) -> None:
    from tunnel_tui.agent.notify import alert_failure
    from tunnel_tui.agent.server import AgentServer
    from tunnel_tui.agent.service import TunnelService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    service = TunnelService(address.home, alert=alert_failure)
    server = AgentServer(service, address, request_shutdown=stop.set)
    await server.start()
    address.pid.write_text(f"{os.getpid()}\n")
    await service.resume()  # waits for a key left by the previous agent
    log.info("agent %d serving %s", os.getpid(), address.home)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_INTERVAL)
            if not address.home.exists():
                log.warning("home %s was removed: stopping", address.home)
                break
            if not os.path.exists(address.socket):
                log.warning("socket %s was removed: listening again", address.socket)
                await server.rebind()
            try:
                service.connections()  # picks up config changes
            except TunnelTuiError as exc:
                log.warning("config unreadable: %s", exc.message)
    finally:
        log.info("stopping: closing tunnels")
        server.remove_socket()  # refuse new clients at once
        try:
            await asyncio.wait_for(service.aclose(), 15.0)
        except TimeoutError:
            log.warning("tunnels did not close within 15 s")
        await server.close()
        with contextlib.suppress(FileNotFoundError):
            if address.pid.read_text().strip() == str(os.getpid()):
                address.pid.unlink()
        log.info("agent %d stopped", os.getpid())


def run(home: Path | None = None, *, to_stderr: bool = False) -> int:
    os.umask(0o077)
    disable_core_dumps()
    address = resolve(home)
    ensure_socket_dir(address)
    try:
        lock_fd = acquire_lock(address)
    except AgentAlreadyRunning as exc:
        print(exc.render(), file=sys.stderr)
        return 0
    try:
        setup_logging(address.home, to_stderr=to_stderr)
        install_fast_loop()
        asyncio.run(serve(address))
    finally:
        os.close(lock_fd)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tunnel_tui.agent")
    parser.add_argument("--home", type=Path, default=None, help="tunnel-tui home directory")
    parser.add_argument("--foreground", action="store_true", help="also log to stderr")
    args = parser.parse_args(argv)
    if args.home is not None:
        os.environ[paths.HOME_ENV] = str(args.home)
    try:
        return run(args.home, to_stderr=args.foreground)
    except TunnelTuiError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
