"""Watch the Redis message bus; when it is lost, close this process's sockets with 1011.

channels-redis 4.3 keeps its ``on_disconnect``/``on_reconnect`` options but never calls
them, and a socket whose groups live on a dead Redis is deaf: it would miss logouts and
revocations. So each process pings Redis, and when the bus is gone it closes its
sockets with 1011 ``bus_lost``; clients reconnect with backoff (docs/errors.md), and
their new sockets subscribe again once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis

from gateway.sockets.bus import bus
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.live import CloseAll

logger = logging.getLogger("gateway.buswatch")


async def watch_bus(url: str, close_all: CloseAll, *, interval: float = 0.5) -> None:
    client = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    healthy = True
    try:
        while True:
            try:
                await client.ping()
            except (redis.RedisError, OSError):
                if healthy:
                    logger.warning("message bus lost: closing local sockets with 1011")
                healthy = bus.up = False
                await close_all(CloseCode.INTERNAL_ERROR, "bus_lost")
            else:
                if not healthy:
                    logger.warning("message bus is back")
                healthy = bus.up = True
            await asyncio.sleep(interval)
    finally:
        await client.aclose()
