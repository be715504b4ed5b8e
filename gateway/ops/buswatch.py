"""Watch the Redis message bus; when it breaks, close this process's sockets with 1011.

channels-redis 4.3 keeps its ``on_disconnect``/``on_reconnect`` options but never calls
them, and a socket whose groups live on a dead Redis is deaf: it would miss logouts and
revocations. So each process asks Redis for its ``run_id`` every ``interval``:

- no answer: the bus is down (``bus.up`` false, handshakes refused with 1013);
- another ``run_id`` than before: Redis was restarted or failed over, and what it held
  (queued messages, group memberships) and what was published meanwhile is gone;
- the pub/sub layer's subscriber is disconnected (the bus is down until it is back), or
  it reconnected and resubscribed by itself (``gateway.bus.redis`` reports it).

Each is a break in the bus (``bus.epoch``), after which this process's sockets are
closed with 1011 ``bus_lost``; clients reconnect with backoff (docs/errors.md), and their
new sockets subscribe again. The client here retries a slow answer, never a dropped
connection: reconnecting by itself could hide a restart between two checks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.bus.health import bus
from gateway.bus.redis import subscribers_connected
from gateway.bus.target import connect
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.live import CloseAll

logger = logging.getLogger("gateway.buswatch")


async def watch_bus(url: str, close_all: CloseAll, *, interval: float = 0.5) -> None:
    client = connect(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                     retry=Retry(NoBackoff(), 2, supported_errors=(redis.TimeoutError,)))
    watch = BusWatch(close_all)
    try:
        while True:
            await watch.check(client)
            await asyncio.sleep(interval)
    finally:
        await client.aclose()


@dataclass
class BusWatch:
    close_all: CloseAll
    server: str | None = None  # run_id of the Redis that last answered
    epoch: int = field(default_factory=lambda: bus.epoch)  # the last break acted on

    async def check(self, client: redis.Redis) -> None:
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
