"""The per-process session cache (gateway/login/session_cache.py): its rules, in process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer

from gateway.bus.health import bus
from gateway.login import session_cache
from gateway.login.session_cache import REVOKED_GROUP, SessionCache, announce, listen, sessions
from oidc.types import CredentialKind, Principal
from tests.channels.conftest import eventually

NOW = 1_000_000.0


def principal(expires_at: float = NOW + 3600) -> Principal:
    return Principal(issuer="https://idp", subject="alice", client_id=None, groups=frozenset(),
                     roles=frozenset(), scopes=frozenset(), claims={}, expires_at=expires_at,
                     sid="s1", credential=CredentialKind.SESSION)


@pytest.fixture
def cache() -> SessionCache:
    made = SessionCache(ttl=60, max_entries=3)
    made.enabled = True
    return made


@pytest.fixture
def bus_up() -> Iterator[None]:
    epoch = bus.epoch
    yield
    bus.up, bus.epoch = True, epoch


def test_serves_an_entry_until_its_ttl_or_the_principals_expiry(cache: SessionCache) -> None:
    cache.put("k", principal(), NOW, cache.generation)
    assert cache.get("k", NOW + 59) is not None
    assert cache.get("k", NOW + 60) is None
    cache.put("k", principal(expires_at=NOW + 10), NOW, cache.generation)
    assert cache.get("k", NOW + 10) is None


def test_a_read_that_overlapped_an_invalidation_is_not_cached(cache: SessionCache) -> None:
    generation = cache.generation  # the database read starts
    cache.forget("other")  # a logout is announced meanwhile
    cache.put("k", principal(), NOW, generation)
    assert cache.get("k", NOW) is None


def test_off_until_the_listener_joined_and_empty_when_turned_off(cache: SessionCache) -> None:
    cache.put("k", principal(), NOW, cache.generation)
    cache.turn_off()
    assert cache.get("k", NOW) is None and len(cache) == 0
    cache.put("k", principal(), NOW, cache.generation)
    assert len(cache) == 0


def test_a_lost_bus_empties_the_cache(cache: SessionCache, bus_up: None) -> None:
    cache.put("k", principal(), NOW, cache.generation)
    bus.up = False
    assert cache.get("k", NOW) is None
    bus.up = True
    assert cache.get("k", NOW) is None  # nothing comes back with the bus


def test_a_break_in_the_bus_between_two_reads_empties_the_cache(cache: SessionCache,
                                                                 bus_up: None) -> None:
    cache.put("k", principal(), NOW, cache.generation)
    bus.broken()  # down and back, or Redis replaced, or the subscriber reconnected
    assert cache.get("k", NOW) is None
    cache.put("k", principal(), NOW, cache.generation)
    assert cache.get("k", NOW) is None, "off until the listener has joined the broadcast again"
    cache.heard_from(bus.epoch)
    cache.put("k", principal(), NOW, cache.generation)
    assert cache.get("k", NOW) is not None, "learnt after the rejoin: kept"


def test_a_read_that_overlapped_a_break_in_the_bus_is_not_cached(cache: SessionCache,
                                                                 bus_up: None) -> None:
    generation = cache.generation  # the database read starts
    bus.broken()
    cache.put("k", principal(), NOW, generation)
    assert cache.get("k", NOW) is None


def test_bounded(cache: SessionCache) -> None:
    for key in "abcd":
        cache.put(key, principal(), NOW, cache.generation)
    assert len(cache) == 3 and cache.get("a", NOW) is None


async def test_the_listener_turns_the_cache_on_and_applies_the_broadcast() -> None:
    task = asyncio.create_task(listen())
    try:
        for _ in range(100):
            if sessions.enabled:
                break
            await asyncio.sleep(0.01)
        assert sessions.enabled
        sessions.put("k", principal(expires_at=time.time() + 3600), time.time(), sessions.generation)
        assert sessions.get("k", time.time()) is not None
        # another process's logout arrives through the layer, not through announce():
        await get_channel_layer().group_send(
            REVOKED_GROUP, {"type": "session.revoked", "session": "k", "reason": "logged_out"})
        for _ in range(100):
            if sessions.get("k", time.time()) is None:
                break
            await asyncio.sleep(0.01)
        assert sessions.get("k", time.time()) is None
        sessions.put("j", principal(expires_at=time.time() + 3600), time.time(), sessions.generation)
        await announce(["j"], "refreshed")  # this process: dropped at once
        assert sessions.get("j", time.time()) is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not session_cache.sessions.enabled


async def test_after_a_break_the_listener_joins_the_broadcast_again(bus_up: None) -> None:
    """A replaced Redis has forgotten the core layer's memberships: the listener joins again
    (within BREAK_CHECK_SECONDS), and only then does the cache serve again."""
    task = asyncio.create_task(listen())
    layer = get_channel_layer()
    try:
        await eventually(lambda: sessions.enabled and sessions.bus_epoch == bus.epoch, "joined")
        layer.groups.pop(REVOKED_GROUP)  # what a restarted Redis forgets
        bus.broken()
        sessions.put("k", principal(expires_at=time.time() + 3600), time.time(), sessions.generation)
        assert sessions.get("k", time.time()) is None, "off until joined again"
        await eventually(lambda: sessions.bus_epoch == bus.epoch, "joined again")
        assert REVOKED_GROUP in layer.groups
        sessions.put("k", principal(expires_at=time.time() + 3600), time.time(), sessions.generation)
        await get_channel_layer().group_send(
            REVOKED_GROUP, {"type": "session.revoked", "session": "k", "reason": "logged_out"})
        await eventually(lambda: sessions.get("k", time.time()) is None, "the revocation")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
