"""Watch the Redis message bus; when it breaks, close this process's sockets with 1011.

channels-redis 4.3 keeps its ``on_disconnect``/``on_reconnect`` options but never calls
them, and a socket whose groups live on a dead Redis is deaf: it would miss logouts and
revocations. So each process asks Redis for its ``run_id`` every ``interval``:

- no answer: the bus is down (``bus.up`` false, handshakes refused with 1013);
- with Sentinel, the sentinels name another master than at the last check: a failover,
  perhaps ordered while the old master still runs, so every connection of this process
  is dropped to reconnect to the new one;
- another ``run_id`` than before: Redis was restarted or failed over, and what it held
  (queued messages, group memberships) and what was published meanwhile is gone;
- the pub/sub layer's subscriber is disconnected (the bus is down until it is back), or
  it reconnected and resubscribed by itself (``gateway.bus.redis`` reports it).

Each is a break in the bus (``bus.epoch``), after which this process's sockets are
closed with 1011 ``bus_lost``; clients reconnect with backoff (docs/errors.md), and their
new sockets subscribe again. Once the bus is up, the switchboard re-joins every group it
still has members in (a replaced Redis has forgotten the core layer's memberships).
The client here retries a slow answer, never a dropped connection: reconnecting by
itself could hide a restart between two checks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from gateway.bus.health import bus
from gateway.bus.redis import drop_subscriber_connections, subscribers_connected
from gateway.bus.target import connect, drop_master_connections, parse_sentinel
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.live import CloseAll
from gateway.sockets.switchboard import rejoin_groups

logger = logging.getLogger("gateway.buswatch")


async def watch_bus(url: str, close_all: CloseAll, *, interval: float = 0.5) -> None:
    client = connect(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                     retry=Retry(NoBackoff(), 2, supported_errors=(redis.TimeoutError,)))
    target = parse_sentinel(url)
    master = None if target is None else MasterWatch(
        target.sentinel(socket_timeout=1.0, socket_connect_timeout=1.0), target.service)
    watch = BusWatch(close_all, master)
    try:
        while True:
            await watch.check(client)
            await asyncio.sleep(interval)
    finally:
        await client.aclose()


@dataclass
class MasterWatch:
    """The master the sentinels name; another one than at the last check is a failover."""

    sentinel: Sentinel
    service: str
    address: tuple[str, int] | None = None

    async def moved(self) -> bool:
        try:
            address = tuple(await self.sentinel.discover_master(self.service))
        except (redis.RedisError, OSError):
            return False  # no sentinel answers: the master's own check below decides
        moved = self.address is not None and address != self.address
        self.address = (str(address[0]), int(address[1]))
        return moved


@dataclass
class BusWatch:
    close_all: CloseAll
    master: MasterWatch | None = None  # with Sentinel
    server: str | None = None  # run_id of the Redis that last answered
    epoch: int = field(default_factory=lambda: bus.epoch)  # the last break acted on
    rejoined: int = field(default_factory=lambda: bus.epoch)  # groups joined since this break

    async def check(self, client: redis.Redis) -> None:
        if self.master is not None and await self.master.moved():
            logger.warning("Sentinel names another master: reconnecting, and closing local"
                           " sockets with 1011")
            bus.broken()
            await client.connection_pool.disconnect()
            await drop_master_connections()
            await drop_subscriber_connections()
        try:
            info = await client.info("server")
        except (redis.RedisError, OSError):
            self._lost()
        else:
            self._answered(str(info.get("run_id", "")))
            if not subscribers_connected():
                self._lost()
        if bus.epoch != self.epoch or not bus.up:
            self.epoch = bus.epoch
            await self.close_all(CloseCode.INTERNAL_ERROR, "bus_lost")
        if bus.up and self.rejoined != bus.epoch:
            epoch = bus.epoch
            if await rejoin_groups():
                self.rejoined = epoch

    def _lost(self) -> None:
        if bus.up:
            logger.warning("message bus lost (Redis does not answer, or the channel layer's"
                           " subscriber is disconnected): closing local sockets with 1011")
            bus.broken()
        bus.up = False

    def _answered(self, server: str) -> None:
        if self.server is not None and server != self.server:
            logger.warning("message bus replaced (Redis restarted or failed over):"
                           " closing local sockets with 1011")
            bus.broken()
        self.server = server
        if not bus.up and subscribers_connected():
            logger.warning("message bus is back")
            bus.up = True
