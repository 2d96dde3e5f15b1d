"""The resume detector: injected clocks for suspend/freeze arithmetic, and one real
SIGSTOP of a process running `watch()` (what happens when a laptop lid closes or a
terminal job is stopped)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.fixtures.waiting import wait_until_async
from tunnel_tui.core.resume_detector import Resume, ResumeDetector, ResumeKind


class FakeClocks:
    def __init__(self) -> None:
        self.mono = 100.0
        self.boot = 5000.0

    def run(self, seconds: float) -> None:  # the process runs: both clocks advance
        self.mono += seconds
        self.boot += seconds

    def suspend(self, seconds: float) -> None:  # the machine sleeps: only BOOTTIME
        self.boot += seconds


def _detector(clocks: FakeClocks, period: float = 1.0, threshold: float = 3.0) -> ResumeDetector:
    return ResumeDetector(
        period, threshold, monotonic=lambda: clocks.mono, boottime=lambda: clocks.boot
    )


def test_regular_ticks_report_nothing() -> None:
    clocks = FakeClocks()
    det = _detector(clocks)
    for _ in range(100):
        clocks.run(1.0 + 0.2)  # a little late, as a busy event loop is
        assert det.tick() is None


def test_suspend_is_reported_with_the_time_asleep() -> None:
    clocks = FakeClocks()
    det = _detector(clocks)
    clocks.run(0.4)
    clocks.suspend(600.0)
    clocks.run(0.6)
    resume = det.tick()
    assert resume == Resume(ResumeKind.SUSPEND, pytest.approx(600.0))
    assert "suspended for 600.0 s" in resume.describe()
    clocks.run(1.0)
    assert det.tick() is None  # reported once


def test_short_suspend_below_threshold_is_ignored() -> None:
    clocks = FakeClocks()
    det = _detector(clocks, threshold=3.0)
    clocks.suspend(2.5)
    clocks.run(1.0)
    assert det.tick() is None


def test_freeze_is_reported_as_lateness_beyond_the_period() -> None:
    clocks = FakeClocks()
    det = _detector(clocks, period=1.0, threshold=3.0)
    clocks.run(30.0)  # SIGSTOPped: every clock ran, the tick did not
    resume = det.tick()
    assert resume is not None and resume.kind is ResumeKind.FREEZE
    assert resume.gap == pytest.approx(29.0)
    clocks.run(3.9)  # late by 2.9 s: under the threshold
    assert det.tick() is None


def test_reset_forgets_the_gap() -> None:
    clocks = FakeClocks()
    det = _detector(clocks)
    clocks.suspend(100.0)
    clocks.run(50.0)
    det.reset()
    clocks.run(1.0)
    assert det.tick() is None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        ResumeDetector(0, 1)
    with pytest.raises(ValueError):
        ResumeDetector(1, -1)


async def test_watch_calls_back_on_a_detection() -> None:
    clocks = FakeClocks()
    readings: list[float] = []

    def boottime() -> float:
        readings.append(clocks.boot)
        return clocks.boot

    det = ResumeDetector(0.01, 3.0, monotonic=lambda: clocks.mono, boottime=boottime)
    readings.clear()  # the constructor's reading
    seen: list[Resume] = []
    task = asyncio.get_running_loop().create_task(det.watch(seen.append))
    await wait_until_async(lambda: readings, 5, "the watcher's first clock reading")
    clocks.suspend(10.0)
    await wait_until_async(lambda: seen, 5, "the suspend reported")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.kind for r in seen] == [ResumeKind.SUSPEND]


WATCHER = textwrap.dedent(
    """
    import asyncio, sys
    from tunnel_tui.core.resume_detector import ResumeDetector

    def report(resume):
        print(resume.kind.value, round(resume.gap, 2), flush=True)

    print("ready", flush=True)
    asyncio.run(ResumeDetector(period=0.05, threshold=0.5).watch(report))
    """
)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return proc.stdout.readline().strip()


def test_real_sigstop_of_a_watching_process_is_reported_as_a_freeze() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert _readline(proc, 10) == "ready"
        time.sleep(0.2)  # the behaviour's baseline: a few ordinary ticks before the freeze
        os.kill(proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        # The frozen process cannot run: wait out the freeze we want to produce.
        while time.monotonic() - stopped_at < 1.5:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGCONT)
        kind, gap = _readline(proc, 5).split()
        assert kind == "freeze"
        assert 1.0 <= float(gap) <= 3.0
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(5)
