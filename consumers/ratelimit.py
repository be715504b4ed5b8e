"""A token bucket for one connection's incoming frames. Pure: the clock is passed in.

The bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second;
each frame takes one. A connection that finds it empty has sent more than ``burst``
frames faster than ``rate`` allows and is closed with 4429 ``rate_limited``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens, self.stamp = self.burst, clock()

    def take(self) -> bool:
        """Take one token; False when the bucket is empty (the frame is over the limit)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
