"""Run a child in the foreground of this terminal and hand signals on, as `env` would
if it could exec (exec cannot: it must clean up after the child).

The child shares our process group, so a Ctrl-C typed at the terminal reaches it
directly (the kernel sends SIGINT to the whole foreground group). A signal sent to
us alone — `kill -INT`, `kill -TERM`, a hang-up of a `nohup`-less shell — is
forwarded to the child. On Linux the two are told apart by the signal's origin
(`si_code`: SI_KERNEL for the terminal's, SI_USER for kill()), so the child never
gets a Ctrl-C twice. We then wait for the child, whatever it does with the signal.
Elsewhere (no sigtimedwait) only SIGTERM and SIGHUP are forwarded.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_SI_KERNEL = 0x80
_POLL = 0.5


def exit_status(returncode: int) -> int:
    """A shell's view of a child's status: 128+N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


class Interrupted(BaseException):
    """A signal arrived before the child ran: unwind (cleaning up) and exit 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """Until the child runs, SIGTERM/SIGHUP unwind like Ctrl-C does, so `finally`
    blocks clean up (temp files, the lease) instead of the process just dying."""

    def raise_it(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    old = {sig: signal.signal(sig, raise_it) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_foreground(
    argv: Sequence[str], env: Mapping[str, str], *, started: Callable[[int], None] | None = None
) -> int:
    """Run argv with env (stdin/stdout/stderr our own); its exit status (128+N for a
    signal). Call from the main thread."""
    pending: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)  # arrived in the instant before the mask was set

    old = {sig: signal.signal(sig, remember) for sig in FORWARDED}
    try:
        proc = subprocess.Popen(list(argv), env=dict(env))
        if started is not None:
            started(proc.pid)
        if hasattr(signal, "sigtimedwait"):
            return _wait_linux(proc, pending)
        return _wait_plain(proc, pending)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _wait_linux(proc: subprocess.Popen[bytes], pending: list[int]) -> int:
    waited = {*FORWARDED, signal.SIGCHLD}  # SIGCHLD: wake as soon as the child ends
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        for signum in pending:
            _forward(proc, signum)
        while proc.poll() is None:
            info = signal.sigtimedwait(waited, _POLL)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            from_terminal = info.si_code == _SI_KERNEL
            if not from_terminal and info.si_pid != proc.pid:
                _forward(proc, info.si_signo)
        return exit_status(proc.returncode)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)


def _wait_plain(proc: subprocess.Popen[bytes], pending: list[int]) -> int:
    def forward(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGINT:  # the terminal's Ctrl-C reached the child already
            _forward(proc, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    for signum in pending:
        forward(signum, None)
    while True:
        with contextlib.suppress(InterruptedError):
            return exit_status(proc.wait())


def _forward(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signum)
