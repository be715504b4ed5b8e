"""Spread a burst of handshakes over loop turns, so the open sockets keep being served.

When many clients connect at once (a reconnect storm after a deploy or a network blip),
asyncio runs every handshake that became ready in the same loop turn, one after the
other: 200 request heads and handshakes at ~0.5 ms each hold the loop for 100 ms, and
every open socket's frames, timers and the collector policy wait that long.

``turns`` gives the handshake work of one turn a budget of ``TURN_BUDGET`` seconds. The
server's protocol (``config.hardening``) parses a request head through ``turns.run``:
at once while the turn has room, else in a later turn, in arrival order. The gateway's
authentication (``gateway.handshake.middleware``) is not deferred, but ``charge``
counts it against the turn, so the heads parsed after it wait instead. A lone handshake
never waits, and the line moves by at least one head every turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from gateway.observe.metrics import HANDSHAKE_WORK_DEFERRED

logger = logging.getLogger("gateway.pacing")

TURN_BUDGET = 0.005  # seconds of handshake work per loop turn


class TurnBudget:
    """A stretch of handshake work starts with the first one in a loop turn and ends
    when the loop comes round again (a callback queued behind it). Deferred work waits
    in one line, run by one drainer callback per turn."""

    def __init__(self, budget: float = TURN_BUDGET,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.budget = budget
        self.clock = clock
        self.stretch = 0  # numbers the stretches
        self.started = 0.0  # when the current stretch began
        self.loop: asyncio.AbstractEventLoop | None = None  # set while a stretch runs
        self.line: deque[Callable[[], None]] = deque()  # deferred work, oldest first
        self.line_loop: asyncio.AbstractEventLoop | None = None  # the loop that drains it
        self.draining = False  # a drainer is queued

    def has_room(self) -> bool:
        """Whether this turn's handshake work may go on now (starting a stretch if none)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.stretch += 1
            self.loop, self.started = loop, self.clock()
            loop.call_soon(self._end, self.stretch)
            return True
        return self.clock() - self.started <= self.budget

    def charge(self) -> None:
        """Count the work that follows against this turn's budget, without deferring it."""
        self.has_room()

    def _end(self, stretch: int) -> None:
        if stretch == self.stretch:
            self.loop = None

    def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now if this turn has room and nothing waits, else in a later turn."""
        loop = asyncio.get_running_loop()
        if self.line_loop is not loop:  # nothing waits in a loop that is gone (tests)
            self.line.clear()
            self.line_loop, self.draining = loop, False
        if not self.line and self.has_room():
            work()
            return
        HANDSHAKE_WORK_DEFERRED.inc()
        self.line.append(work)
        if not self.draining:
            self.draining = True
            loop.call_soon(self._drain, self.stretch)

    def _drain(self, stretch: int) -> None:
        """Once a turn: the oldest work always, then more while the turn has room."""
        self._end(stretch)  # a turn has passed since this was queued
        moved = False
        while self.line and (self.has_room() or not moved):
            work = self.line.popleft()
            moved = True
            try:
                work()
            except Exception:  # one failing head must not stop the line
                logger.exception("deferred handshake work failed")
        if self.line:
            asyncio.get_running_loop().call_soon(self._drain, self.stretch)
        else:
            self.draining = False


turns = TurnBudget()  # one per process: the server's and the gateway's handshake work
