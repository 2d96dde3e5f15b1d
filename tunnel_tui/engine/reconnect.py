"""Capped, jittered exponential backoff between reconnect attempts."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt` (0-based): "full jitter" over min(cap, base * 2**n).

    Full jitter spreads the reconnects of many tunnels after a bastion restart;
    never below a tenth of the step so a tight loop is impossible.
    """
    step = min(cap, base * float(1 << min(attempt, 30)))
    r = float((rng or random).random())
    return max(step * 0.1, step * r)
