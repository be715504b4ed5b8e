"""Spread the work of many closing sockets over loop turns.

When thousands of a process's sockets end together (a load balancer restart, a network
partition), the event loop learns of every end in the same turn, and each costs Python
work: the server's ``connection_lost`` wakes the app's receive, Channels' dispatch and
the consumer's cleanup (socket ledger, presence, group discards). That is about 45 µs a
socket, 0.45 s of loop per 10,000, during which every socket still open waits
(``bench/README.md``).

A :class:`TurnGate` lets at most ``per_turn`` pieces of work start in one loop turn,
oldest first; the others wait for later turns. A lone close never waits. One gate per
stage, each with its own count:

- ``ended_streams``: closing our end after the client's (its FIN): the ``close`` system
  call costs about 20 µs on loopback, as much as the Python work after it;
- ``lost_connections``: the server's ``connection_lost`` (``config.hardening``), so the
  app hears of at most ``PER_TURN`` disconnects a turn;
- ``closes``: the consumer's cleanup (``consumers.base``), which may wait on I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from gateway.observe.metrics import CLOSE_WORK_DEFERRED

logger = logging.getLogger("gateway.pacing")

PER_TURN = 100  # pieces of work per loop turn and gate: about 5 ms


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled while waiting
        future.set_result(None)


class TurnGate:
    def __init__(self, stage: str, per_turn: int = PER_TURN) -> None:
        self.stage, self.per_turn = stage, per_turn
        self.deferred = CLOSE_WORK_DEFERRED.labels(stage)  # exported from 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.admitted = 0  # in the current turn
        self.turn_open = False  # a callback queued behind this turn resets the count
        self.waiting: deque[Callable[[], None]] = deque()
        self.draining = False

    def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now if this turn has room and nothing waits, else in a later turn."""
        loop = self._bind()
        if not self.waiting and self._take(loop):
            work()
        else:
            self._queue(loop, work)

    async def wait(self) -> None:
        """Return once this turn has room for the caller, in arrival order."""
        loop = self._bind()
        if not self.waiting and self._take(loop):
            return
        future: asyncio.Future[None] = loop.create_future()
        self._queue(loop, lambda: _wake(future))
        await future

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new loop (tests): nothing from the old one is valid
            self.loop, self.admitted, self.turn_open = loop, 0, False
            self.waiting.clear()
            self.draining = False
        return loop

    def _queue(self, loop: asyncio.AbstractEventLoop, work: Callable[[], None]) -> None:
        self.deferred.inc()
        self.waiting.append(work)
        if not self.draining:
            self.draining = True
            loop.call_soon(self._drain)

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
        """Once a turn: start as much waiting work as the turn has room for."""
        assert self.loop is not None
        while self.waiting and self._take(self.loop):
            work = self.waiting.popleft()
            try:
                work()
            except Exception:  # one failing piece must not stop the line
                logger.exception("deferred %s work failed", self.stage)
        if self.waiting:
            self.loop.call_soon(self._drain)
        else:
            self.draining = False


ended_streams = TurnGate("eof")  # one of each per process
lost_connections = TurnGate("connection_lost")
closes = TurnGate("cleanup")
