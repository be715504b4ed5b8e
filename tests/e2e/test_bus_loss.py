"""Issue 5: Redis stops under open sockets (close 1011 bus_lost), then comes back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import devidp
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from gateway.sockets.addressing import revoke, subject_group
from tests.e2e.conftest import Stack
from tests.e2e.flows import closed_with, first_message, open_ws, service_token
from tests.redis_servers import PrivateRedis, PrivateSentinel

pytestmark = pytest.mark.database_free  # Redis outages: the PostgreSQL pass skips them


@pytest.fixture
def bus_gateway(stack: Stack, tmp_path: Path,
                request: pytest.FixtureRequest) -> Iterator[tuple[GatewayProcess, PrivateRedis]]:
    """A gateway on a Redis of its own, with the channel layer named by an indirect
    parameter (default pubsub)."""
    redis = PrivateRedis(free_port(), tmp_path)
    redis.start()
    gateway = _gateway_on(stack, tmp_path, redis.url,
                          GATEWAY_CHANNEL_LAYER=getattr(request, "param", "pubsub"))
    try:
        yield gateway, redis
    finally:
        gateway.stop()
        redis.stop()


def _gateway_on(stack: Stack, tmp_path: Path, redis_url: str, **extra: str) -> GatewayProcess:
    port = free_port()
    env = gateway_env(stack.idp.issuer, port, database_file=tmp_path / "db.sqlite3",
                      redis_url=redis_url, extra=extra)
    migrate(env)
    return start_gateway(port, env, tmp_path / "gateway.log")


async def test_sockets_close_1011_when_redis_goes_and_work_again_when_it_returns(
        stack: Stack, bus_gateway: tuple[GatewayProcess, PrivateRedis]) -> None:
    gateway, redis = bus_gateway
    token = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    headers = {"Authorization": f"Bearer {token}"}
    ws = await open_ws(gateway.url, headers=headers)
    await first_message(ws)

    redis.stop()
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "bus_lost")

    redis.start()
    again = await _open_when_the_bus_is_back(gateway, headers)
    await _revoke_reaches(redis, stack.idp.issuer, again)  # messages through Redis reach it


async def _open_when_the_bus_is_back(gateway: GatewayProcess, headers: dict[str, str],
                                     seconds: float = 5) -> ClientConnection:
    """A socket past its welcome, retried while the watchdog still sees the bus down (1013)."""
    deadline = time.monotonic() + seconds
    while True:
        ws = await open_ws(gateway.url, headers=headers)
        try:
            await first_message(ws)
            return ws
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 1013 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


def _reader_headers(stack: Stack) -> dict[str, str]:
    token = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    return {"Authorization": f"Bearer {token}"}


async def _revoke_reaches(redis: PrivateRedis | list[PrivateRedis], issuer: str,
                          ws: ClientConnection, layer: str = "pubsub") -> None:
    """A revoke sent through Redis (or its shards, as another process lists them) closes
    ``ws`` with 4401: its process hears the bus."""
    kind = RedisPubSubChannelLayer if layer == "pubsub" else RedisChannelLayer
    sender = kind(hosts=[server.url for server in (redis if isinstance(redis, list) else [redis])])
    group = subject_group(issuer, "svc-reader")
    await sender.group_send(group, revoke(group, "logged_out"))
    await sender.flush()
    with pytest.raises(ConnectionClosed) as revoked:
        await asyncio.wait_for(ws.recv(), 5)
    assert revoked.value.rcvd is not None
    assert revoked.value.rcvd.code == 4401


async def test_sockets_close_1011_when_the_bus_subscriber_is_dropped(
        stack: Stack, bus_gateway: tuple[GatewayProcess, PrivateRedis]) -> None:
    """Redis drops the subscriber (CLIENT KILL, an output buffer limit); the layer
    resubscribes by itself, but what was published meanwhile is lost: the sockets close."""
    gateway, redis = bus_gateway
    headers = _reader_headers(stack)
    ws = await open_ws(gateway.url, headers=headers)
    await first_message(ws)

    assert int(redis.cli("CLIENT", "KILL", "TYPE", "pubsub")) >= 1
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "bus_lost")
    assert "message bus subscriber reconnected" in gateway.log()

    again = await open_ws(gateway.url, headers=headers)
    await first_message(again)
    await _revoke_reaches(redis, stack.idp.issuer, again)


@pytest.mark.parametrize("bus_gateway", ["pubsub", "core"], indirect=True)
async def test_sockets_close_1011_when_redis_restarts_between_two_checks(
        stack: Stack, bus_gateway: tuple[GatewayProcess, PrivateRedis],
        request: pytest.FixtureRequest) -> None:
    """A Redis restarted faster than the watchdog's interval has lost what it held (the core
    layer's group memberships) and what was published meanwhile: the sockets close."""
    gateway, redis = bus_gateway
    layer = request.node.callspec.params["bus_gateway"]
    headers = _reader_headers(stack)
    ws = await open_ws(gateway.url, headers=headers)
    await first_message(ws)

    redis.stop()
    redis.start()  # back within a fraction of a second, with another run_id
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "bus_lost")

    again = await _open_when_the_bus_is_back(gateway, headers)
    await _revoke_reaches(redis, stack.idp.issuer, again, layer)


async def _readyz(gateway: GatewayProcess) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"{gateway.url}/readyz")


async def _wait_for_readyz(gateway: GatewayProcess, status: int) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = await _readyz(gateway)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_readyz_and_handshakes_tell_the_truth_while_redis_is_down(
        stack: Stack, bus_gateway: tuple[GatewayProcess, PrivateRedis]) -> None:
    gateway, redis = bus_gateway
    assert (await _wait_for_readyz(gateway, 200)).status_code == 200
    token = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    headers = {"Authorization": f"Bearer {token}"}

    redis.stop()
    down = await _wait_for_readyz(gateway, 503)
    assert down.status_code == 503
    assert any(item.startswith("redis:") for item in down.json()["failing"])
    assert await closed_with(gateway.url, headers=headers) == (1013, "bus_unavailable")
    assert await _logged(gateway, '"bus_unavailable"', '"outcome": "deny"'), \
        "the refused handshake is audited as a denial"

    redis.start()
    assert (await _wait_for_readyz(gateway, 200)).status_code == 200
    # the watchdog's next check sees Redis, and the layer's subscriber back within seconds
    ws = await _open_when_the_bus_is_back(gateway, headers)
    await _revoke_reaches(redis, stack.idp.issuer, ws)


async def _logged(gateway: GatewayProcess, *needles: str, within: float = 5.0) -> bool:
    """Whether an audit line holding every needle appears (the writer flushes in batches)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(all(n in line for n in needles) for line in gateway.log().splitlines()):
            return True
        await asyncio.sleep(0.1)
    return False



@dataclass
class Replicated:
    """A master, its replica and a Sentinel, each a real Redis server on a port of its own."""

    master: PrivateRedis
    replica: PrivateRedis
    sentinel: PrivateSentinel

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.stop()


@pytest.fixture
def sentinel_gateway(stack: Stack, tmp_path: Path) -> Iterator[tuple[GatewayProcess, Replicated]]:
    master = PrivateRedis(free_port(), tmp_path)
    replica = PrivateRedis(free_port(), tmp_path, "--replicaof", "127.0.0.1", str(master.port))
    servers = Replicated(master, replica, PrivateSentinel(free_port(), tmp_path, master))
    try:
        for server in (master, replica, servers.sentinel):
            server.start()
        _wait_until(lambda: str(replica.port) in servers.sentinel.cli("SENTINEL", "replicas", "gw"),
                    "the sentinel to find the replica", 15)
        gateway = _gateway_on(stack, tmp_path,
                              f"redis+sentinel://127.0.0.1:{servers.sentinel.port}/gw/0")
    except BaseException:
        servers.stop()
        raise
    try:
        yield gateway, servers
    finally:
        gateway.stop()
        servers.stop()


def _wait_until(condition: Callable[[], bool], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


async def test_through_sentinel_the_gateway_follows_a_failover_to_the_new_master(
        stack: Stack, sentinel_gateway: tuple[GatewayProcess, Replicated]) -> None:
    gateway, servers = sentinel_gateway
    headers = _reader_headers(stack)
    ws = await open_ws(gateway.url, headers=headers)
    await first_message(ws)
    await _revoke_reaches(servers.master, stack.idp.issuer, ws)  # found the master through Sentinel

    held = await open_ws(gateway.url, headers=headers)
    await first_message(held)
    servers.master.stop()  # the master dies; the sentinel promotes the replica
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(held.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "bus_lost")

    await asyncio.to_thread(_wait_until, lambda: servers.sentinel.master_port() == servers.replica.port,
                            "the sentinel to promote the replica", 30)
    again = await _open_when_the_bus_is_back(gateway, headers, seconds=20)
    await _revoke_reaches(servers.replica, stack.idp.issuer, again)  # the new master carries the bus
    ready = await _readyz(gateway)
    assert ready.status_code == 200, ready.text


async def test_through_sentinel_an_ordered_failover_moves_the_bus_at_once(
        stack: Stack, sentinel_gateway: tuple[GatewayProcess, Replicated]) -> None:
    """SENTINEL FAILOVER while the old master still runs (as for an upgrade): connections
    made before it would stay on the old master until Sentinel reconfigures it (about 10 s),
    deaf to what is published on the new one. The watchdog sees the sentinels name another
    master, drops every connection and closes the sockets at once."""
    gateway, servers = sentinel_gateway
    headers = _reader_headers(stack)
    held = await open_ws(gateway.url, headers=headers)
    await first_message(held)

    assert servers.sentinel.cli("SENTINEL", "FAILOVER", "gw") == "OK"
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(held.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "bus_lost")
    assert servers.sentinel.master_port() == servers.replica.port
    assert servers.master.process is not None and servers.master.process.poll() is None, \
        "the old master still runs"

    again = await _open_when_the_bus_is_back(gateway, headers)
    await _revoke_reaches(servers.replica, stack.idp.issuer, again)  # heard on the new master


@pytest.fixture
def sharded_gateway(stack: Stack,
                    tmp_path: Path) -> Iterator[tuple[GatewayProcess, list[PrivateRedis]]]:
    """A gateway whose layer spreads over two Redis servers; its own state is on the first."""
    shards = [PrivateRedis(free_port(), tmp_path) for _ in range(2)]
    for shard in shards:
        shard.start()
    gateway = _gateway_on(stack, tmp_path, shards[0].url,
                          GATEWAY_REDIS_SHARDS=" ".join(shard.url for shard in shards))
    try:
        yield gateway, shards
    finally:
        gateway.stop()
        for shard in shards:
            shard.stop()


async def test_a_gateway_listing_the_shards_in_another_order_refuses_sockets(
        stack: Stack, tmp_path: Path,
        sharded_gateway: tuple[GatewayProcess, list[PrivateRedis]]) -> None:
    """Another order hashes groups to other shards: such a process would miss logouts."""
    first, shards = sharded_gateway
    port = free_port()
    env = gateway_env(stack.idp.issuer, port, database_file=tmp_path / "db.sqlite3",
                      redis_url=shards[0].url,
                      extra={"GATEWAY_REDIS_SHARDS": f"{shards[1].url} {shards[0].url}"})
    other = start_gateway(port, env, tmp_path / "other.log", ready_statuses=(200, 503))
    try:
        failing = await _failing_until(other, "bus: GATEWAY_REDIS_SHARDS differs")
        assert any(item.startswith("bus: GATEWAY_REDIS_SHARDS differs") for item in failing), failing
        headers = _reader_headers(stack)
        assert await closed_with(other.url, headers=headers) == (1013, "bus_unavailable")
        assert "GATEWAY_REDIS_SHARDS differs" in other.log()
        assert (await _readyz(first)).status_code == 200, "the first list stays in use"
        ws = await open_ws(first.url, headers=headers)
        await first_message(ws)
        await ws.close()
    finally:
        other.stop()


async def _failing_until(gateway: GatewayProcess, prefix: str) -> list[str]:
    """/readyz's failing list once an item starts with ``prefix`` (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        failing: list[str] = (await _readyz(gateway)).json()["failing"]
        if any(item.startswith(prefix) for item in failing) or time.monotonic() > deadline:
            return failing
        await asyncio.sleep(0.2)


async def test_with_shards_groups_spread_over_every_redis_and_each_is_watched(
        stack: Stack, sharded_gateway: tuple[GatewayProcess, list[PrivateRedis]]) -> None:
    gateway, shards = sharded_gateway
    headers = _reader_headers(stack)
    ws = await open_ws(gateway.url, headers=headers)
    await first_message(ws)
    subscribed = [set(shard.cli("PUBSUB", "CHANNELS", "*").split()) for shard in shards]
    group = f"asgi__group__{subject_group(stack.idp.issuer, 'svc-reader')}"
    assert group in subscribed[_consistent_hash(group, 2)], "where channels-redis hashes it"
    for index, names in enumerate(subscribed):  # the random names may all land on one
        assert all(_consistent_hash(name, 2) == index for name in names), subscribed

    shards[1].stop()  # a shard that does not hold the gateway's own state
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "bus_lost")
    shards[1].start()
    again = await _open_when_the_bus_is_back(gateway, headers)
    await _revoke_reaches(shards, stack.idp.issuer, again)


def _gateway_lines(gateway: GatewayProcess, mark: int) -> list[str]:
    """What the gateway's own loggers wrote since ``mark`` (audit events left out)."""
    return [line for line in gateway.log()[mark:].splitlines()
            if line.strip() and not line.startswith('{"ts"')]


def _samples(gateway: GatewayProcess, name: str) -> dict[str, float]:
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    return {labels: float(value) for labels, value in
            re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M)}


@pytest.mark.parametrize("layer", ["pubsub", "core"])
async def test_an_outage_logs_one_line_when_lost_and_one_when_back(
        stack: Stack, tmp_path: Path, layer: str) -> None:
    """Issue 24 §6: while Redis is down every loop that needs it retries with backoff,
    counted in gateway_dependency_retries_total, and the log says it once; no traceback."""
    redis = PrivateRedis(free_port(), tmp_path)
    redis.start()
    gateway = _gateway_on(stack, tmp_path, redis.url, GATEWAY_CHANNEL_LAYER=layer,
                          GATEWAY_METRICS_NETWORKS="127.0.0.0/8")
    try:
        headers = _reader_headers(stack)
        ws = await open_ws(gateway.url, headers=headers)
        await first_message(ws)
        mark = len(gateway.log())

        redis.stop()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert await closed_with(gateway.url, headers=headers) == (1013, "bus_unavailable")
        await asyncio.sleep(6)  # a dozen watchdog checks, and the other loops' retries
        lost = _gateway_lines(gateway, mark)
        assert len(lost) == 1 and lost[0].startswith("redis lost: "), lost
        retries = _samples(gateway, "gateway_dependency_retries_total")
        assert sum(retries.values()) >= 10, retries  # counted, not logged
        assert retries['component="bus watchdog",dependency="redis"'] >= 10, retries
        backed_off = {k: v for k, v in retries.items() if "bus watchdog" not in k}
        assert all(v <= 8 for v in backed_off.values()), backed_off  # not every 0.5 s or 1 s
        assert _samples(gateway, "gateway_dependency_down") == {'dependency="redis"': 1.0}

        redis.start()
        again = await _open_when_the_bus_is_back(gateway, headers, seconds=10)
        await _revoke_reaches(redis, stack.idp.issuer, again, layer)
        deadline = time.monotonic() + 20  # every loop that failed has succeeded again:
        while len(lines := _gateway_lines(gateway, mark)) < 2:  # heartbeats beat every 10 s
            assert time.monotonic() < deadline, lines
            await asyncio.sleep(0.2)
        assert len(lines) == 2 and lines[1].startswith("redis is back after "), lines
        assert "Traceback" not in gateway.log()[mark:]
        assert _samples(gateway, "gateway_dependency_down") == {'dependency="redis"': 0.0}
    finally:
        gateway.stop()
        redis.stop()
