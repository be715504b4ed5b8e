"""Spread the cleanup of many closing sockets over loop turns.

When thousands of a process's sockets end together (a load balancer restart, a network
partition), asyncio wakes every consumer's disconnect handler in the same loop turn, and
each cleans up (socket ledger, presence, group discards): about 45 µs a socket, 0.45 s of
loop per 10,000, during which every socket still open waits (``bench/README.md``).

``closes.wait()`` lets at most ``PER_TURN`` cleanups start in one loop turn, oldest first;
the others wait for later turns. A lone close never waits.
"""

from __future__ import annotations

import asyncio
from collections import deque

PER_TURN = 100  # cleanups per loop turn: about 5 ms of work


class TurnGate:
    def __init__(self, per_turn: int = PER_TURN) -> None:
        self.per_turn = per_turn
        self.loop: asyncio.AbstractEventLoop | None = None
        self.admitted = 0  # in the current turn
        self.turn_open = False  # a callback queued behind this turn resets the count
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.draining = False

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new loop (tests): nothing from the old one is valid
            self.loop, self.admitted, self.turn_open = loop, 0, False
            self.waiting.clear()
            self.draining = False
        if not self.waiting and self._take(loop):
            return
        future: asyncio.Future[None] = loop.create_future()
        self.waiting.append(future)
        if not self.draining:
            self.draining = True
            loop.call_soon(self._drain)
        await future

    def _take(self, loop: asyncio.AbstractEventLoop) -> bool:
        if not self.turn_open:
            self.turn_open, self.admitted = True, 0
            loop.call_soon(self._next_turn)
        if self.admitted < self.per_turn:
            self.admitted += 1
            return True
        return False

    def _next_turn(self) -> None:
        self.turn_open = False

    def _drain(self) -> None:
        """Once a turn: wake as many waiters as the turn has room for."""
        assert self.loop is not None
        while self.waiting and self._take(self.loop):
            future = self.waiting.popleft()
            if not future.done():  # cancelled while waiting
                future.set_result(None)
            else:
                self.admitted -= 1
        if self.waiting:
            self.loop.call_soon(self._drain)
        else:
            self.draining = False


closes = TurnGate()  # one per process
