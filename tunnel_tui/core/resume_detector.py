"""Notice that this process did not run for a while: a system suspend, or a freeze.

After a laptop resumes, every SSH connection may be dead while the engine still
believes it is up (keepalive timers did not run while the machine slept). The
engine calls `tick()` periodically (or runs `watch()`) and forces a reconnect
check when it reports a `Resume`.

Two signals, both from clocks that never jump with NTP or the user changing the
date:
- **suspend**: CLOCK_BOOTTIME counts time spent suspended, CLOCK_MONOTONIC does
  not; a gap between their deltas since the last tick is the time asleep.
- **freeze**: a SIGSTOP (or a stalled VM) stops the process but not the clocks;
  the tick simply arrives much later than its period.

Pure Python (no asyncssh): the clocks are injected so tests run in microseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

Clock = Callable[[], float]


def _boottime() -> float:
    # CLOCK_BOOTTIME is Linux only; elsewhere fall back to MONOTONIC (suspend then
    # shows up as a freeze, which triggers the same reconnect check).
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    if clock_id is None:
        return time.monotonic()
    return time.clock_gettime(clock_id)


class ResumeKind(Enum):
    SUSPEND = "suspend"  # the machine slept (BOOTTIME advanced more than MONOTONIC)
    FREEZE = "freeze"  # the process was stopped (the tick came far too late)


@dataclass(frozen=True)
class Resume:
    kind: ResumeKind
    gap: float  # seconds this process did not run (estimate)

    def describe(self) -> str:
        what = "the computer was suspended" if self.kind is ResumeKind.SUSPEND else (
            "this process was frozen"
        )
        return f"{what} for {self.gap:.1f} s: checking every tunnel"


class ResumeDetector:
    """Call `tick()` about every `period` seconds; it returns a `Resume` when the time
    since the previous tick shows a suspend or a freeze longer than `threshold`."""

    def __init__(
        self,
        period: float = 1.0,
        threshold: float = 3.0,
        *,
        monotonic: Clock = time.monotonic,
        boottime: Clock = _boottime,
    ) -> None:
        if period <= 0 or threshold <= 0:
            raise ValueError("period and threshold must be positive")
        self.period = period
        self.threshold = threshold
        self._monotonic = monotonic
        self._boottime = boottime
        self._last_mono = monotonic()
        self._last_boot = boottime()

    def reset(self) -> None:
        """Start measuring from now (e.g. after the engine handled a resume)."""
        self._last_mono = self._monotonic()
        self._last_boot = self._boottime()

    def tick(self) -> Resume | None:
        mono, boot = self._monotonic(), self._boottime()
        d_mono = mono - self._last_mono
        d_boot = boot - self._last_boot
        self._last_mono, self._last_boot = mono, boot
        slept = d_boot - d_mono
        if slept > self.threshold:
            return Resume(ResumeKind.SUSPEND, slept)
        late = d_mono - self.period
        if late > self.threshold:
            return Resume(ResumeKind.FREEZE, late)
        return None

    async def watch(self, on_resume: Callable[[Resume], None]) -> None:
        """Tick forever (until cancelled), calling `on_resume` for each detection."""
        self.reset()
        while True:
            await asyncio.sleep(self.period)
            resume = self.tick()
            if resume is not None:
                on_resume(resume)
