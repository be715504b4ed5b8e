"""Spread a burst of handshakes over loop turns, so the open sockets keep being served.

When many clients connect at once (a reconnect storm after a deploy or a network blip),
asyncio runs every handshake that became ready in the same loop turn, one after the
other: 200 request heads and handshakes at ~0.5 ms each hold the loop for 100 ms, and
every open socket's frames, timers and the collector policy wait that long. ``turns``
lets the handshake work of one turn (the server parsing request heads,
``config.hardening``, and the gateway authenticating, ``gateway.handshake.middleware``)
run for ``TURN_BUDGET`` seconds; the rest waits for the next turn, in arrival order,
behind what else became ready. A lone handshake never waits.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from gateway.observe.metrics import HANDSHAKE_WORK_DEFERRED

TURN_BUDGET = 0.005  # seconds of handshake work per loop turn


class TurnBudget:
    """A stretch of handshake work starts with the first one in a loop turn and ends
    when the loop comes round again (a callback queued behind it). Work that found no
    room waits in line; the oldest in line goes in any stretch in which the line has
    not moved yet, so the line moves every turn, whatever else fills the loop."""

    def __init__(self, budget: float = TURN_BUDGET,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.budget = budget
        self.clock = clock
        self.stretch = 0  # numbers the stretches
        self.started = 0.0  # when the current stretch began
        self.loop: asyncio.AbstractEventLoop | None = None  # set while a stretch runs
        self.line: dict[int, None] = {}  # tickets of the work waiting, oldest first
        self.tickets = itertools.count()
        self.line_loop: asyncio.AbstractEventLoop | None = None  # the loop the line is in
        self.moved = 0  # the stretch in which the line last moved

    def has_room(self) -> bool:
        """Whether this turn's handshake work may go on now (starting a stretch if none)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.stretch += 1
            self.loop, self.started = loop, self.clock()
            loop.call_soon(self._end, self.stretch)
            return True
        return self.clock() - self.started <= self.budget

    def _someone_waits(self) -> bool:
        loop = asyncio.get_running_loop()
        if self.line_loop is not loop:  # nothing waits in a loop that is gone (tests)
            self.line.clear()
            self.line_loop = loop
        return bool(self.line)

    def _end(self, stretch: int) -> None:
        if stretch == self.stretch:
            self.loop = None

    def _goes(self, ticket: int, stretch: int) -> bool:
        """A waiter's turn has come: the stretch it waited on is over; it goes if the
        turn has room, or if it is the oldest in line and the line has not moved in this
        stretch."""
        self._end(stretch)  # even if that stretch's end is queued behind us
        room = self.has_room()
        if room or (next(iter(self.line)) == ticket and self.moved != self.stretch):
            del self.line[ticket]
            self.moved = self.stretch
            return True
        return False

    def _join_line(self) -> int:
        HANDSHAKE_WORK_DEFERRED.inc()
        ticket = next(self.tickets)
        self.line[ticket] = None
        return ticket

    async def wait_turn(self) -> None:
        """Return at once while this turn has room and no one waits, else in a later turn."""
        if not self._someone_waits() and self.has_room():
            return
        ticket = self._join_line()
        try:
            while True:
                stretch = self.stretch
                await asyncio.sleep(0)
                if self._goes(ticket, stretch):
                    return
        finally:
            self.line.pop(ticket, None)  # cancelled while waiting

    def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now if this turn has room and no one waits, else in a later turn."""
        if not self._someone_waits() and self.has_room():
            work()
            return
        ticket = self._join_line()
        asyncio.get_running_loop().call_soon(self._retry, work, ticket, self.stretch)

    def _retry(self, work: Callable[[], None], ticket: int, stretch: int) -> None:
        if self._goes(ticket, stretch):
            work()
        else:
            asyncio.get_running_loop().call_soon(self._retry, work, ticket, self.stretch)


turns = TurnBudget()  # one per process: the server's and the gateway's handshake work
