"""Per-process state in Redis that expires unless its process keeps it alive, and the choice
between it and its in-memory stand-in.

The socket ledger and the live-connections roster both write entries that must vanish
within ``ttl`` of their process dying: each keeps its own entries in ``local`` and a
heartbeat pushes their expiry forward every third of ``ttl``. One Redis client and one
heartbeat per event loop (tests run several loops).
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Sized
from typing import Any, Generic, TypeVar

import redis.asyncio as redis

from gateway.bus.perprocess import redis_clients
from gateway.observe.outage import REDIS

T = TypeVar("T")

REFRESH_BATCH = 1000
"""Members refreshed per Redis round trip: the heartbeat yields to the loop between batches,
so refreshing 50,000 entries is 50 short steps, not one long stall (bench/README.md)."""


def batches(members: dict[str, dict[str, float]],
            size: int = REFRESH_BATCH) -> list[list[tuple[str, dict[str, float]]]]:
    """``key -> {member: score}`` cut into batches of at most ``size`` members (a large key
    is split over batches), each a list of ``(key, members)``."""
    out: list[list[tuple[str, dict[str, float]]]] = [[]]
    room = size
    for key, scores in members.items():
        items = list(scores.items())
        while items:
            if room == 0:
                out.append([])
                room = size
            part, items = items[:room], items[room:]
            out[-1].append((key, dict(part)))
            room -= len(part)
    return [batch for batch in out if batch]


class TurnBatches(Generic[T]):
    """Items submitted in the same loop turn, sent together: ``send`` gets up to ``size``
    of them at a time and returns one result per item; each ``submit`` returns its own
    item's result (or raises its error) once its chunk is sent. A burst of handshakes, or
    a grant change that unsubscribes thousands of sockets at once, then costs a few Redis
    round trips instead of one per socket."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[Any]]],
                 size: int = REFRESH_BATCH) -> None:
        self.send, self.size = send, size
        self._queued: weakref.WeakKeyDictionary[Any, list[tuple[T, asyncio.Future[Any]]]] = (
            weakref.WeakKeyDictionary())
        self._senders: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> Any:
        loop = asyncio.get_running_loop()
        queued = self._queued.get(loop)
        if queued is None:
            queued = self._queued[loop] = []
            self._senders.add(sender := loop.create_task(self._send_soon(loop)))
            sender.add_done_callback(self._senders.discard)
        done = loop.create_future()
        queued.append((item, done))
        return await done

    async def _send_soon(self, loop: Any) -> None:
        await asyncio.sleep(0)  # the rest of this turn's items join
        queued = self._queued.pop(loop, [])
        for start in range(0, len(queued), self.size):
            chunk = queued[start:start + self.size]
            try:
                results: list[Any] = await self.send([item for item, _ in chunk])
            except Exception as exc:  # every caller of the chunk learns of it
                results = [exc] * len(chunk)
            except BaseException:  # cancelled (the loop stops): no caller is left waiting
                left = queued[start:]
                _answer(left, [RuntimeError("batch cancelled")] * len(left))
                raise
            _answer(chunk, results)


def _answer(callers: list[tuple[Any, asyncio.Future[Any]]], results: list[Any]) -> None:
    """Each caller's result, or its error, unless it stopped waiting."""
    for (_, done), result in zip(callers, results, strict=True):
        if done.done():
            continue
        if isinstance(result, Exception):
            done.set_exception(result)
        else:
            done.set_result(result)


class KeptAlive:
    """Base for Redis state refreshed by a heartbeat; subclasses define ``refresh``."""

    local: Sized  # this process's entries; the heartbeat runs while there are any

    def __init__(self, url: str, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.url, self.ttl, self.clock = url, ttl, clock
        self.key_ttl = math.ceil(ttl) + 1
        self._beats: weakref.WeakKeyDictionary[Any, asyncio.Task[None]] = weakref.WeakKeyDictionary()
        self.clients = redis_clients(url)

    def client(self) -> redis.Redis:
        return self.clients.get()

    def keep_beating(self) -> None:
        """Start this loop's heartbeat unless it runs already."""
        loop = asyncio.get_running_loop()
        beat = self._beats.get(loop)
        if beat is None or beat.done():
            self._beats[loop] = loop.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        while self.local:
            await asyncio.sleep(self.ttl / 3)
            component = f"{type(self).__name__} heartbeat"  # entries expire if it keeps failing
            try:
                await self.refresh()
            except (redis.RedisError, OSError) as exc:  # the bus watchdog closes the sockets
                REDIS.failed(component, exc)
            else:
                REDIS.recovered(component)

    async def refresh(self) -> None:
        raise NotImplementedError

    async def extend(self, members: dict[str, dict[str, float]], *, gt: bool = False) -> None:
        """Set the given scores of members that still exist (``xx``: never resurrect a
        removed one; ``gt``: only raise a score) and push each key's expiry: one ZADD per
        key and batch, a round trip per batch."""
        for batch in batches(members):
            pipe = self.client().pipeline(transaction=False)
            for key, scores in batch:
                pipe.zadd(key, scores, xx=True, gt=gt)
                pipe.expire(key, self.key_ttl)
            await pipe.execute()

    async def close(self) -> None:
        for beat in list(self._beats.values()):
            beat.cancel()
        await self.clients.aclose()


