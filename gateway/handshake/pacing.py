"""Spread a burst of handshakes over loop turns, so the open sockets keep being served.

When many clients connect at once (a reconnect storm after a deploy or a network blip),
asyncio runs every handshake that became ready in the same loop turn, one after the
other: 200 handshakes at ~0.5 ms each hold the loop for 100 ms, and every open socket's
frames, timers and the collector policy wait that long. A ``TurnBudget`` lets the
handshakes of one turn run for ``budget`` seconds; the rest wait for the next turn,
behind what else became ready, in arrival order. A lone handshake never waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

TURN_BUDGET = 0.005  # seconds of handshake work per loop turn


class TurnBudget:
    """One per process: ``await budget.wait_turn()`` before a handshake's own work."""

    def __init__(self, budget: float = TURN_BUDGET,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.budget = budget
        self.clock = clock
        self.started = 0.0  # when this turn's first handshake began
        self.loop: asyncio.AbstractEventLoop | None = None  # set while a turn's stretch runs

    async def wait_turn(self) -> None:
        """Return at once while this turn's handshakes have budget left, else after the
        loop's next turn."""
        while True:
            loop = asyncio.get_running_loop()
            if self.loop is not loop:  # the first handshake since the loop's last turn
                self.loop, self.started = loop, self.clock()
                loop.call_soon(self._end_stretch)  # runs before those that wait below
                return
            if self.clock() - self.started <= self.budget:
                return
            await asyncio.sleep(0)

    def _end_stretch(self) -> None:
        self.loop = None
