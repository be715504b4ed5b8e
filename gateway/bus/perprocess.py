"""One instance per process of state kept in Redis when configured, else in memory; and
one client per event loop (Redis here, HTTP for the providers: ``gateway.issuers.http``)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import redis.asyncio as redis
from django.conf import settings

from gateway.bus.target import connect

T = TypeVar("T")


class PerProcess(Generic[T]):
    """This process's instance: the Redis one when a Redis URL is configured, the in-memory
    one otherwise, chosen on first use; tests may install their own (``use``)."""

    def __init__(self, redis_kind: Callable[[str, float], T], memory_kind: Callable[[], T]) -> None:
        self.redis_kind, self.memory_kind = redis_kind, memory_kind
        self.instance: T | None = None

    def __call__(self) -> T:
        if self.instance is None:
            config = settings.GATEWAY
            self.instance = (self.redis_kind(config.redis_url, config.limits.ledger_ttl)
                             if config.redis_url else self.memory_kind())
        return self.instance

    def use(self, replacement: T | None) -> None:
        """Tests: install an instance (None: choose again from the settings on next use)."""
        self.instance = replacement


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class PerLoop(Generic[C]):
    """A client for each event loop, made by ``make`` on first use: a client's pooled
    connections belong to the loop that opened them. A uvicorn worker has one loop for its
    life; tests and ``async_to_sync`` (in other threads, hence the lock) make short-lived
    ones, whose clients are forgotten with their loop. A client closed meanwhile is replaced."""

    def __init__(self, make: Callable[[], C]) -> None:
        self.make = make
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._clients.get(loop)
            if found is None or getattr(found, "is_closed", False):
                found = self._clients[loop] = self.make()
            return found

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one."""
        with self._lock:
            found = self._clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.aclose()


def redis_clients(url: str) -> PerLoop[redis.Redis]:
    """Per-loop clients of ``url`` whose commands time out after 2 s."""
    return PerLoop(lambda: connect(url, socket_timeout=2.0, socket_connect_timeout=2.0))
