"""Where one-time tickets wait for their socket: Redis when configured, else this process.

Redemption is one atomic step that deletes what it reads, so a ticket admits one socket
across every process, and it costs no database commit on the handshake path:
- ``RedisTickets``: ``SET gw:ticket:<sha256> <record> EX <ttl>`` at minting, ``GETDEL`` at
  redemption (Redis 6.2+), ``DEL`` to burn a ticket seen in a URL;
- ``MemoryTickets``: a dict in the one process there is without Redis (``GATEWAY_WORKERS``
  is 1 then), holding at most ``MAX_WAITING`` unexpired tickets.
Only a ticket's hash is ever a key.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Protocol

import redis.asyncio as redis

from gateway.bus.perprocess import PerProcess, redis_clients
from oidc.errors import OidcError

MAX_WAITING = 100_000  # unexpired tickets one process without Redis keeps at most
KEY_PREFIX = "gw:ticket:"


class TooManyTickets(OidcError):
    """The process already holds ``MAX_WAITING`` unredeemed tickets: try again later."""

    error = "too_many_tickets"
    status = "unavailable"


class TicketStore(Protocol):
    async def put(self, key: str, record: dict[str, Any], ttl: float) -> None: ...
    async def take(self, key: str) -> dict[str, Any] | None:
        """The record under ``key``, removed in the same step; None if absent or expired."""
    async def burn(self, keys: list[str]) -> int:
        """Remove ``keys``; how many there were."""


class MemoryTickets:
    """One process, no Redis: a dict of (expiry, record), expired entries swept on put."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.waiting: dict[str, tuple[float, dict[str, Any]]] = {}

    async def put(self, key: str, record: dict[str, Any], ttl: float) -> None:
        now = self.clock()
        if len(self.waiting) >= MAX_WAITING:
            self.waiting = {k: v for k, v in self.waiting.items() if v[0] > now}
            if len(self.waiting) >= MAX_WAITING:
                raise TooManyTickets(f"{MAX_WAITING} tickets waiting")
        self.waiting[key] = (now + ttl, record)

    async def take(self, key: str) -> dict[str, Any] | None:
        entry = self.waiting.pop(key, None)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    async def burn(self, keys: list[str]) -> int:
        return sum(self.waiting.pop(key, None) is not None for key in keys)


class RedisTickets:
    """Shared by every process on the same Redis; one client per event loop."""

    def __init__(self, url: str, _ttl: float = 0.0) -> None:
        self.clients = redis_clients(url)

    def client(self) -> redis.Redis:
        return self.clients.get()

    async def put(self, key: str, record: dict[str, Any], ttl: float) -> None:
        await self.client().set(KEY_PREFIX + key, json.dumps(record, separators=(",", ":")),
                                ex=max(1, math.ceil(ttl)))

    async def take(self, key: str) -> dict[str, Any] | None:
        raw = await self.client().getdel(KEY_PREFIX + key)
        if raw is None:
            return None
        record: dict[str, Any] = json.loads(raw)
        return record

    async def burn(self, keys: list[str]) -> int:
        if not keys:
            return 0
        return int(await self.client().delete(*(KEY_PREFIX + key for key in keys)))


tickets: PerProcess[TicketStore] = PerProcess(RedisTickets, MemoryTickets)
