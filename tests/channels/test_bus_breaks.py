"""Breaks in the bus (gateway/bus/health.py): the pub/sub layer reports a subscriber that
reconnected, and the bus watchdog acts on every kind of break, against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from redis.asyncio.client import PubSub

from devidp.stack import free_port
from gateway.bus.health import bus
from gateway.bus.redis import PubSubChannelLayer, ReportingPubSub, subscribers_connected
from gateway.observe.metrics import BUS_BREAKS
from gateway.ops import buswatch
from gateway.ops.buswatch import BusWatch, MasterWatch, ShardAgreement, Watched, shard_list_id
from gateway.ops.health import check_shards
from tests.channels.conftest import eventually
from tests.redis_servers import PrivateRedis

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of our own on the shared server


def bus_up() -> bool:
    """``bus.up`` read afresh (mypy would keep it narrowed across the awaits that change it)."""
    return bus.up


@pytest.fixture(autouse=True)
def bus_restored() -> Iterator[None]:
    up, epoch = bus.up, bus.epoch
    yield
    bus.up, bus.epoch, bus.disagreement = up, epoch, None


@pytest.fixture
async def layer() -> AsyncIterator[Any]:
    made = PubSubChannelLayer(hosts=[REDIS_URL])
    yield made
    await made.flush()


async def subscribed(layer: Any, group: str) -> str:
    """A channel in ``group`` that has received one message (its subscriber is connected)."""
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await layer.group_send(group, {"type": "hello"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "hello"
    return str(channel)


async def kill_subscriber(layer: Any) -> None:
    """Drop only this layer's subscriber connection, by its address (not every pub/sub client
    of the shared server)."""
    (shard,) = layer._get_layer()._shards
    host, port = shard._pubsub.connection._writer.get_extra_info("sockname")[:2]
    admin = redis.from_url(REDIS_URL)
    try:
        assert await admin.client_kill_filter(_type="pubsub", addr=f"{host}:{port}") == 1
    finally:
        await admin.aclose()


async def test_the_first_subscription_is_not_a_break(layer: Any) -> None:
    epoch = bus.epoch
    await subscribed(layer, "first")
    assert bus.epoch == epoch


async def test_a_subscriber_that_reconnected_is_a_break_and_hears_again(layer: Any) -> None:
    channel = await subscribed(layer, "kept")
    epoch = bus.epoch
    await kill_subscriber(layer)
    for _ in range(100):
        if bus.epoch != epoch:
            break
        await asyncio.sleep(0.05)
    assert bus.epoch == epoch + 1, "the silent resubscribe is reported"
    await layer.group_send("kept", {"type": "after"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "after"


class FakeRedis:
    """Answers ``INFO server`` as a Redis with ``run_id``, or fails when ``run_id`` is None."""

    def __init__(self) -> None:
        self.run_id: str | None = "a" * 40

    async def info(self, section: str) -> dict[str, str]:
        if self.run_id is None:
            raise redis.ConnectionError("down")
        return {"run_id": self.run_id}


class Closer:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, code: int, reason: str) -> int:
        self.calls.append((code, reason))
        return 0


async def test_the_watchdog_closes_sockets_on_each_kind_of_break() -> None:
    server, closer = FakeRedis(), Closer()
    breaks = BUS_BREAKS._value.get()
    watch = BusWatch(closer, [Watched(server)])  # type: ignore[arg-type]
    await watch.check()
    await watch.check()
    assert closer.calls == [] and bus_up()

    server.run_id = "b" * 40  # restarted or failed over between two checks
    await watch.check()
    assert closer.calls == [(1011, "bus_lost")] and bus_up()

    bus.broken()  # the layer's subscriber reconnected
    await watch.check()
    assert len(closer.calls) == 2

    server.run_id = None
    await watch.check()
    assert not bus_up() and len(closer.calls) == 3
    server.run_id = "b" * 40
    await watch.check()
    assert bus_up() and len(closer.calls) == 3, "back, on the same Redis: nothing more to close"
    assert BUS_BREAKS._value.get() == breaks + 3, "each break counted once on /metrics"


async def test_a_cancel_the_client_library_absorbs_still_ends_the_read_loop(layer: Any) -> None:
    """redis-py can answer a cancel that meets its own read timeout with "no message": the
    read loop must still end, or the layer's flush (which cancels it and waits, deaf to its
    own cancel) never does. Seen once: a suite hung 13 minutes in the flush of the test
    below."""
    await subscribed(layer, "absorbed")
    (shard,) = layer._get_layer()._shards
    pubsub, loop_task = shard._pubsub, shard._receive_task

    calls = 0

    async def absorbing(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        # a read that times out; a cancel meeting it is answered as "no message"
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.1)
        return None

    read = pubsub.get_message
    pubsub.get_message = absorbing
    try:
        await eventually(lambda: calls >= 2, "the loop reads through the absorbing client")
        loop_task.cancel()
        await asyncio.wait({loop_task}, timeout=2)
    finally:
        pubsub.get_message = read
        went_on = not loop_task.done()
        loop_task.cancel()  # the real client lets a cancel through: the teardown's flush ends
    assert not went_on, "the read loop went on after its cancel"


async def test_until_the_subscriber_is_back_the_bus_is_not(tmp_path: Path) -> None:
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    made = PubSubChannelLayer(hosts=[server.url])
    try:
        await subscribed(made, "held")
        assert subscribers_connected()
        epoch = bus.epoch
        server.stop()
        await eventually(lambda: not subscribers_connected(), "the drop is seen")
        server.start()
        await eventually(subscribers_connected, "the subscriber reconnects by itself")
        assert bus.epoch == epoch + 1
    finally:
        await made.flush()
        server.stop()
    assert subscribers_connected(), "a flushed layer has no subscriber to wait for"


class StubConnection:
    is_connected = True

    def deregister_connect_callback(self, callback: Any) -> None:
        pass


async def test_a_subscriber_is_not_back_until_its_subscriptions_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py counts a connection as connected before its handshake and the pub/sub's
    resubscription (``on_connect``) are done: until then the bus is not back."""
    resubscribed = asyncio.Event()

    async def resubscribe(self: PubSub, connection: Any) -> None:
        await resubscribed.wait()

    monkeypatch.setattr(PubSub, "on_connect", resubscribe)
    pubsub = ReportingPubSub(redis.ConnectionPool())
    connection = StubConnection()
    pubsub.connection = connection  # type: ignore[assignment]
    pubsub.channels = {b"held": None}

    def down() -> bool:  # read afresh each time
        return pubsub.disconnected

    assert not down()
    connection.is_connected = False
    assert down()
    connection.is_connected = True  # the socket is back; the resubscription is not
    assert down()
    epoch = bus.epoch
    restoring = asyncio.ensure_future(pubsub.on_connect(connection))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert down() and bus.epoch == epoch + 1
    resubscribed.set()
    await restoring
    assert not down()


class FakeSentinel:
    def __init__(self) -> None:
        self.master: tuple[str, int] | None = ("10.0.0.1", 6379)

    async def discover_master(self, service: str) -> tuple[str, int]:
        assert service == "gw"
        if self.master is None:
            raise redis.ConnectionError("no sentinel answers")
        return self.master


async def test_the_master_watch_sees_a_failover_only_when_the_named_master_changes() -> None:
    sentinel = FakeSentinel()
    watch = MasterWatch(sentinel, "gw")  # type: ignore[arg-type]
    assert not await watch.moved(), "the first answer only sets the master"
    assert not await watch.moved()
    sentinel.master = None
    assert not await watch.moved(), "silent sentinels: nothing to compare"
    sentinel.master = ("10.0.0.2", 6379)
    assert await watch.moved()
    assert not await watch.moved()


async def test_with_shards_every_redis_of_the_bus_is_watched() -> None:
    own, shard, closer = FakeRedis(), FakeRedis(), Closer()
    watch = BusWatch(closer, [Watched(own), Watched(shard)])  # type: ignore[arg-type]
    await watch.check()
    shard.run_id = None  # one shard is gone: its groups are deaf
    await watch.check()
    assert not bus_up() and closer.calls == [(1011, "bus_lost")]
    shard.run_id = "c" * 40  # back, restarted
    await watch.check()
    assert bus_up()
    own.run_id = "d" * 40  # the gateway's own Redis restarted between two checks
    await watch.check()
    assert len(closer.calls) == 3


def test_a_shard_list_is_known_by_its_servers_in_order_without_secrets() -> None:
    listed = shard_list_id(["redis://a:6379/0", "redis://b:6379/0"])
    assert listed == shard_list_id(["redis://:pw@a:6379/0", "redis://user:x@b:6379/0?ssl=1"])
    assert listed != shard_list_id(["redis://b:6379/0", "redis://a:6379/0"]), "order matters"
    assert listed != shard_list_id(["redis://a:6379/0", "redis://c:6379/0"])
    sentinel = "redis+sentinel://:pw@s1:26379,s2:26379/bus/0?sentinel_password=secret"
    assert shard_list_id([sentinel]) == shard_list_id(["redis+sentinel://s1:26379,s2:26379/bus/0"])


@pytest.fixture
async def own_redis() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL)
    await client.delete(buswatch.SHARDS_KEY)
    yield client
    await client.delete(buswatch.SHARDS_KEY)
    await client.aclose()


async def test_the_first_shard_list_holds_while_a_process_with_it_runs(
        own_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buswatch, "SHARDS_TTL", 1)
    first, other = ShardAgreement(own_redis, "first"), ShardAgreement(own_redis, "other")
    assert await first.agreed()
    assert not await other.agreed()
    await asyncio.sleep(0.6)
    assert await first.agreed(), "still running: its list is kept alive"
    await asyncio.sleep(0.6)
    assert not await other.agreed()
    await asyncio.sleep(1.2)  # every process with the first list is gone
    assert await other.agreed()
    assert not await first.agreed(), "a process back with the old list is refused in turn"


async def test_a_process_with_another_shard_list_refuses_sockets_until_it_agrees(
        own_redis: redis.Redis) -> None:
    server, closer = FakeRedis(), Closer()
    await own_redis.set(buswatch.SHARDS_KEY, "running", ex=30)
    watch = BusWatch(closer, [Watched(server)], ShardAgreement(own_redis, "mine"))  # type: ignore[arg-type]
    await watch.check()
    assert not bus_up() and closer.calls == [(1011, "bus_lost")]
    assert (await check_shards() or "").startswith("bus: GATEWAY_REDIS_SHARDS differs")

    await own_redis.delete(buswatch.SHARDS_KEY)  # the processes with the other list are gone
    await watch.check()
    assert bus_up() and await check_shards() is None
    assert await own_redis.get(buswatch.SHARDS_KEY) == b"mine"
