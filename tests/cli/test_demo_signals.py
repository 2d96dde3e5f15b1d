"""`tunnel-tui demo` leaves nothing behind when its terminal closes or it is
terminated: the sandbox agent (in its own session, out of the hangup's reach)
stops and the temporary home goes.

The demo runs on a real pseudo-terminal that is its controlling terminal, as in
a terminal emulator; "the terminal closes" is closing the pty's master side,
which makes the kernel send the hangup.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.agent import pid_alive, stop_pid
from tests.fixtures.env import IsolatedEnv
from tests.fixtures.waiting import wait_until
from tunnel_tui.agent.address import resolve

START_SECONDS = 60.0  # bastion, two keys, the agent, then the app's first paint


@dataclass
class DemoOnPty:
    proc: subprocess.Popen[bytes]
    master: int
    tmpdir: Path
    output: bytearray = field(default_factory=bytearray)
    _stop: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        # A terminal reads what the app writes; an unread pty would block the app.
        def read() -> None:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(self.master, 65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    self.output.extend(chunk)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def close_terminal(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(5)
        os.close(self.master)
        self.master = -1

    def sandbox_root(self) -> Path | None:
        roots = list(self.tmpdir.glob("tunnel-tui-sandbox-*"))
        return roots[0] if roots else None

    def agent_pid(self) -> int | None:
        root = self.sandbox_root()
        try:
            return int(resolve(root / "home").pid.read_text().strip()) if root else None
        except (FileNotFoundError, ValueError):
            return None


def _controlling_terminal() -> None:
    # In the child (a new session): make the pty on stdin its controlling terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _start_demo(tmpdir: Path) -> DemoOnPty:
    tmpdir.mkdir(mode=0o700)
    env = dict(os.environ, TMPDIR=str(tmpdir), TERM="xterm-256color", COLUMNS="100", LINES="30")
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunnel_tui", "demo"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(slave)
    run = DemoOnPty(proc, master, tmpdir)
    run.start_reading()
    return run


def _agents_of(root: Path) -> list[int]:
    """PIDs of agent processes whose home is under `root` (by their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"tunnel_tui.agent" in cmdline and str(root).encode() in cmdline:
            found.append(int(entry.name))
    return found


def _end(run: DemoOnPty) -> None:
    if run.master != -1:
        run.close_terminal()
    if run.proc.poll() is None:
        stop_pid(run.proc.pid)
    run.proc.wait(10)


@pytest.fixture
def demo(isolated_env: IsolatedEnv) -> Iterator[DemoOnPty]:
    run = _start_demo(isolated_env.root / "tmp")
    proc = run.proc
    agent_pid: int | None = None
    try:
        agent_pid = wait_until(
            lambda: proc.poll() is None and run.agent_pid(),
            START_SECONDS,
            lambda: f"the sandbox agent (demo exit {proc.poll()}): {run.output[-2000:]!r}",
        )
        assert agent_pid is not None and pid_alive(agent_pid)
        wait_until(
            lambda: b"tunnel-tui sandbox" in run.output,
            START_SECONDS,
            lambda: f"the app on the terminal: {run.output[-2000:]!r}",
        )
        yield run
    finally:
        _end(run)
        if agent_pid is not None and pid_alive(agent_pid):
            stop_pid(agent_pid)  # the test failed; leave nothing running


def _assert_cleaned_up(run: DemoOnPty, agent_pid: int, root: Path) -> None:
    code = wait_until(lambda: run.proc.poll() is not None, 30, "the demo to exit")
    assert code is not None
    wait_until(lambda: not pid_alive(agent_pid), 10, f"the sandbox agent {agent_pid} to stop")
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))


def test_a_closed_terminal_stops_the_sandbox_agent_and_removes_its_home(
    demo: DemoOnPty,
) -> None:
    agent_pid, root = demo.agent_pid(), demo.sandbox_root()
    assert agent_pid is not None and root is not None
    demo.close_terminal()  # the kernel hangs up the demo's session: SIGHUP
    _assert_cleaned_up(demo, agent_pid, root)
    assert demo.proc.returncode == 128 + signal.SIGHUP


def test_sigterm_stops_the_sandbox_agent_and_removes_its_home(demo: DemoOnPty) -> None:
    agent_pid, root = demo.agent_pid(), demo.sandbox_root()
    assert agent_pid is not None and root is not None
    os.kill(demo.proc.pid, signal.SIGTERM)
    _assert_cleaned_up(demo, agent_pid, root)
    assert demo.proc.returncode == 128 + signal.SIGTERM


@pytest.mark.parametrize("moment", ["temporary directory made", "agent started"])
def test_sigterm_while_the_sandbox_is_being_set_up_leaves_nothing(
    isolated_env: IsolatedEnv, moment: str
) -> None:
    run = _start_demo(isolated_env.root / "tmp")
    root: Path | None = None
    try:
        root = wait_until(run.sandbox_root, START_SECONDS, "the sandbox's temporary directory")
        assert root is not None
        if moment == "agent started":  # its vault is being unlocked, the app not yet up
            wait_until(run.agent_pid, START_SECONDS, "the sandbox agent's pid file")
        os.kill(run.proc.pid, signal.SIGTERM)
        wait_until(lambda: run.proc.poll() is not None, 30, "the demo to exit")
        wait_until(lambda: not _agents_of(root), 10, lambda: f"no agent left: {_agents_of(root)}")
        assert not root.exists(), sorted(str(p) for p in root.rglob("*"))
    finally:
        _end(run)
        for pid in _agents_of(root) if root is not None else []:
            stop_pid(pid)  # the test failed; leave nothing running
