"""One instance per process of state kept in Redis when configured, else in memory; and
one Redis client per event loop for such state."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

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


class LoopClients:
    """A client of ``url`` for each event loop (a client is bound to the loop it runs on),
    forgotten with its loop; commands time out after 2 s."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[Any, redis.Redis] = weakref.WeakKeyDictionary()

    def client(self) -> redis.Redis:
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = connect(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return self._clients[loop]

    async def close(self) -> None:
        """Close this loop's client, if it has one."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
