"""Watch the Redis message bus; when it breaks, close this process's sockets with 1011.

channels-redis 4.3 keeps its ``on_disconnect``/``on_reconnect`` options but never calls
them, and a socket whose groups live on a dead Redis is deaf: it would miss logouts and
revocations. So each process asks every Redis of the bus (``GATEWAY_REDIS_URL`` and each
of ``GATEWAY_REDIS_SHARDS``) for its ``run_id`` every ``interval``:

- no answer from one: the bus is down (``bus.up`` false, handshakes refused with 1013);
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
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from gateway.bus.health import bus
from gateway.bus.redis import drop_subscriber_connections, subscribers_connected
from gateway.bus.target import connect, drop_master_connections, parse_sentinel
from gateway.observe.metrics import BUS_BREAKS
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.live import CloseAll
from gateway.sockets.switchboard import rejoin_groups

logger = logging.getLogger("gateway.buswatch")


async def watch_bus(urls: Sequence[str], close_all: CloseAll, *, interval: float = 0.5) -> None:
    """Check every Redis of the bus (the gateway's own, and each shard of the layer)."""
    watch = BusWatch(close_all, [Watched.of(url) for url in urls])
    try:
        while True:
            await watch.check()
            await asyncio.sleep(interval)
    finally:
        for watched in watch.targets:
            await watched.client.aclose()


@dataclass
class MasterWatch:
    """The master the sentinels name; another one than at the last check is a failover."""

    sentinel: Sentinel
    service: str
    address: tuple[str, int] | None = None

    async def moved(self) -> bool:
        try:
            host, port = await self.sentinel.discover_master(self.service)
        except (redis.RedisError, OSError):
            return False  # no sentinel answers: the master's own check below decides
        address = (str(host), int(port))
        moved, self.address = self.address is not None and address != self.address, address
        return moved


@dataclass
class Watched:
    """One Redis of the bus: a client that never reconnects by itself, its last ``run_id``,
    and with Sentinel, which master the sentinels name."""

    client: redis.Redis
    master: MasterWatch | None = None
    server: str | None = None

    @classmethod
    def of(cls, url: str) -> Watched:
        client = connect(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                         retry=Retry(NoBackoff(), 2, supported_errors=(redis.TimeoutError,)))
        target = parse_sentinel(url)
        master = None if target is None else MasterWatch(
            target.sentinel(socket_timeout=1.0, socket_connect_timeout=1.0), target.service)
        return cls(client, master)

    async def failed_over(self) -> bool:
        return self.master is not None and await self.master.moved()

    async def replaced(self) -> bool:
        """Whether Redis answers with another ``run_id`` than before; raises if it does not
        answer."""
        server = str((await self.client.info("server")).get("run_id", ""))
        replaced, self.server = self.server is not None and server != self.server, server
        return replaced


@dataclass
class BusWatch:
    close_all: CloseAll
    targets: list[Watched]
    epoch: int = field(default_factory=lambda: bus.epoch)  # the last break acted on
    rejoined: int = field(default_factory=lambda: bus.epoch)  # groups joined since this break

    async def check(self) -> None:
        if any([await watched.failed_over() for watched in self.targets]):
            await self._failed_over()
        answered = True
        for watched in self.targets:
            try:
                if await watched.replaced():
                    logger.warning("message bus replaced (Redis restarted or failed over):"
                                   " closing local sockets with 1011")
                    bus.broken()
            except (redis.RedisError, OSError):
                answered = False
        if answered and subscribers_connected():
            self._back()
        else:
            self._lost()
        await self._act()

    async def _failed_over(self) -> None:
        logger.warning("Sentinel names another master: reconnecting, and closing local"
                       " sockets with 1011")
        bus.broken()
        await drop_master_connections()  # the watchdog's own Sentinel clients among them
        await drop_subscriber_connections()

    async def _act(self) -> None:
        """Close the sockets after a break (or while down); re-join the groups once up."""
        if bus.epoch != self.epoch:
            BUS_BREAKS.inc()
        if bus.epoch != self.epoch or not bus.up:
            self.epoch = bus.epoch
            await self.close_all(CloseCode.INTERNAL_ERROR, "bus_lost")
        if bus.up and self.rejoined != bus.epoch:
            epoch = bus.epoch
            if await rejoin_groups():
                self.rejoined = epoch

    def _lost(self) -> None:
        if bus.up:
            logger.warning("message bus lost (a Redis does not answer, or the channel layer's"
                           " subscriber is disconnected): closing local sockets with 1011")
            bus.broken()
        bus.up = False

    def _back(self) -> None:
        if not bus.up:
            logger.warning("message bus is back")
            bus.up = True
