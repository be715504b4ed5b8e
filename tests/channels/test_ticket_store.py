"""Issue 23: tickets wait in Redis (GETDEL) or in the process, never in the database.

Both stores: a ticket is taken once, an expired one not at all, a burnt one never. With
Redis, many takers racing for one ticket (as sockets on several processes would) get it
exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from gateway.handshake import ticketstore
from gateway.handshake.ticketstore import (
    KEY_PREFIX,
    MemoryTickets,
    RedisTickets,
    TicketStore,
    TooManyTickets,
)

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of our own on the shared server
RECORD = {"issuer": "https://issuer", "subject": "alice", "session_key": "s1"}


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis_db() -> AsyncIterator[None]:
    client = redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379: run scripts/ensure-redis")
    yield
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def redis_store(redis_db: None) -> RedisTickets:
    return RedisTickets(REDIS_URL)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis_db: None) -> TicketStore:
    return MemoryTickets() if request.param == "memory" else RedisTickets(REDIS_URL)


async def test_a_ticket_is_taken_once(store: TicketStore) -> None:
    await store.put("h1", RECORD, 30)
    assert await store.take("h1") == RECORD
    assert await store.take("h1") is None
    assert await store.take("never-stored") is None


async def test_a_burnt_ticket_cannot_be_taken(store: TicketStore) -> None:
    await store.put("h1", RECORD, 30)
    await store.put("h2", RECORD, 30)
    assert await store.burn(["h1", "h3"]) == 1
    assert await store.take("h1") is None
    assert await store.take("h2") == RECORD


async def test_an_expired_ticket_is_gone_from_memory() -> None:
    clock = Clock()
    store = MemoryTickets(clock)
    await store.put("h1", RECORD, 30)
    clock.now += 30
    assert await store.take("h1") is None


async def test_redis_keeps_a_ticket_only_its_lifetime(redis_store: RedisTickets) -> None:
    await redis_store.put("h1", RECORD, 30)
    ttl = await redis_store.client().ttl(KEY_PREFIX + "h1")
    assert 0 < ttl <= 30


async def test_racing_takers_get_a_redis_ticket_exactly_once(redis_store: RedisTickets) -> None:
    for round_ in range(20):
        await redis_store.put(f"h{round_}", RECORD, 30)
        takers = [RedisTickets(REDIS_URL) for _ in range(8)]  # separate connections
        taken = await asyncio.gather(*(taker.take(f"h{round_}") for taker in takers))
        assert [t for t in taken if t is not None] == [RECORD], round_


async def test_a_process_without_redis_holds_a_bounded_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticketstore, "MAX_WAITING", 3)
    clock = Clock()
    store = MemoryTickets(clock)
    for n in range(3):
        await store.put(f"h{n}", RECORD, 30)
    with pytest.raises(TooManyTickets):
        await store.put("h3", RECORD, 30)
    clock.now += 31  # the expired ones are swept to make room
    await store.put("h3", RECORD, 30)
    assert len(store.waiting) == 1
