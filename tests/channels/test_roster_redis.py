"""The Redis roster: every process sees every socket; a crashed process's sockets expire."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from gateway.ops.roster import CLAIMS_KEY, INFO_KEY, ROSTER_KEY, RedisRoster, SocketEntry

REDIS_URL = "redis://127.0.0.1:6379/12"  # a database of our own on the shared server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clean() -> AsyncIterator[None]:
    client = redis.from_url(REDIS_URL)
    try:
        await client.delete(ROSTER_KEY, INFO_KEY, CLAIMS_KEY)
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379: run scripts/ensure-redis")
    yield
    await client.delete(ROSTER_KEY, INFO_KEY, CLAIMS_KEY)
    await client.aclose()


def entry(socket: str, subject: str, process: str, at: float) -> SocketEntry:
    return SocketEntry(socket=socket, issuer="https://idp.example.com", subject=subject,
                       route="/ws/events/", credential="bearer", process=process, connected_at=at)


async def test_two_processes_share_one_roster_and_crashed_entries_expire(clean: None) -> None:
    clock = Clock()
    one, two = RedisRoster(REDIS_URL, 30, clock), RedisRoster(REDIS_URL, 30, clock)
    await one.opened(entry("s1", "bob", "host:1", 1.0))
    await two.opened(entry("s2", "alice", "host:2", 2.0))
    await two.subscribed("s2", ["deploys", "alerts.x"])
    listed = await one.entries()
    assert [(e.socket, e.process, e.channels) for e in listed] == [
        ("s1", "host:1", ()), ("s2", "host:2", ("alerts.x", "deploys"))]

    await one.closed("s1")
    assert [e.socket for e in await two.entries()] == ["s2"]

    clock.now += 20
    await one.opened(entry("s3", "bob", "host:1", 3.0))
    clock.now += 15  # process two stopped refreshing (crashed) 35 s ago; s3 is 15 s old
    assert [e.socket for e in await one.entries()] == ["s3"]
    assert await redis.from_url(REDIS_URL).hkeys(INFO_KEY) == [b"s3"]  # its details went too

    await one.refresh()  # a live process keeps its sockets listed
    clock.now += 25
    assert [e.socket for e in await one.entries()] == ["s3"]
    for roster in (one, two):
        await roster.close()


async def test_changes_made_together_go_out_in_one_transaction(clean: None) -> None:
    """A burst of handshakes, or a grant change unsubscribing many sockets at once, costs
    one round trip per batch, not one per socket; each caller returns once written."""
    import asyncio

    roster = RedisRoster(REDIS_URL, 30, Clock())
    client = roster.client()
    pipelines = 0
    make_pipeline = client.pipeline

    def counted(transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        nonlocal pipelines
        pipelines += 1
        return make_pipeline(transaction, shard_hint)

    client.pipeline = counted  # type: ignore[method-assign]
    sockets = [f"s{n}" for n in range(50)]
    await asyncio.gather(*(roster.opened(entry(s, "bob", "host:1", float(n)))
                           for n, s in enumerate(sockets)))
    assert pipelines == 1
    assert [e.socket for e in await roster.entries()] == sockets

    await asyncio.gather(*(roster.subscribed(s, ["deploys"]) for s in sockets[:10]),
                         *(roster.closed(s) for s in sockets[10:]))
    assert pipelines == 2
    listed = await roster.entries()
    assert [(e.socket, e.channels) for e in listed] == [(s, ("deploys",)) for s in sockets[:10]]
    await roster.close()


async def test_claims_are_kept_apart_and_read_only_on_request(clean: None) -> None:
    from dataclasses import replace

    from gateway.ops.roster import matcher_view

    roster = RedisRoster(REDIS_URL, 30, Clock())
    view = matcher_view(["eng"], ["dev"], {"groups": ["eng"], "org": {"team": "sre"}})
    assert view["claims"] == {"org": {"team": "sre"}}  # groups are read from the principal's set
    await roster.opened(replace(entry("s1", "bob", "host:1", 1.0), **view))
    [listed] = await roster.entries()
    assert (listed.groups, listed.roles, listed.claims) == (("eng",), ("dev",), {})
    assert await roster.claims(["s1", "gone"]) == {"s1": {"org": {"team": "sre"}}}
    await roster.closed("s1")
    assert await redis.from_url(REDIS_URL).hkeys(CLAIMS_KEY) == []
    await roster.close()
    big = matcher_view([], [], {"blob": "x" * 5000})
    assert (big["claims"], big["claims_kept"]) == ({}, False)
