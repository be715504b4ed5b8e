"""channels-redis's pub/sub layer, reporting when its subscriber connection was replaced.

redis-py's ``PubSub`` reconnects a dropped subscriber connection by itself and subscribes
again to what it had (``on_connect``): after a Redis restart, a failover, ``CLIENT KILL``,
or Redis dropping a subscriber over its output buffer limit. Whatever was published in
between never arrives, and nothing tells the layer. Here that reconnect is reported as a
break in the bus (``gateway.bus.health``); the bus watchdog then closes this process's
sockets with 1011 ``bus_lost``, since they may have missed a logout or a revocation.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection

from gateway.bus.health import bus
from gateway.observe.outage import REDIS

logger = logging.getLogger("gateway.bus")

SUBSCRIBER = "message bus subscriber"


class ReportingPubSub(PubSub):
    """A ``PubSub`` that reports each reconnect made while it had subscriptions."""

    dropped = False  # its connection dropped, and its subscriptions are not restored yet

    @property
    def disconnected(self) -> bool:
        """It has subscriptions, and its connection dropped and has not restored them yet.
        A connection is connected again before redis-py's handshake (``CLIENT SETINFO``)
        and the resubscription in :meth:`on_connect`: the drop is remembered until then."""
        self.note_drop()
        return self.subscribed and self.dropped

    def note_drop(self) -> None:
        """Remember that its connection dropped while it had subscriptions."""
        connection: Connection | None = self.connection  # redis-py annotates it as None
        if self.subscribed and connection is not None and not connection.is_connected:
            self.dropped = True

    async def on_connect(self, connection: Connection) -> None:
        if self.subscribed:
            if not REDIS.lost:  # after an outage, its end is what the log says
                logger.warning("message bus subscriber reconnected: messages may have been lost")
            bus.broken()
        await super().on_connect(connection)
        self.dropped = False


def subscribers_connected() -> bool:
    """Whether every subscriber of this process's pub/sub layers is connected: until then
    the bus is not back, since a socket admitted meanwhile could not hear its groups."""
    return not any(shard._pubsub is not None and shard._pubsub.disconnected for shard in _shards)


async def drop_subscriber_connections() -> None:
    """Disconnect the pub/sub layers' connections; the subscribers reconnect (to the master
    the sentinels name now, with a Sentinel host) and report it."""
    for shard in list(_shards):
        if shard._redis is not None:
            try:
                await shard._redis.connection_pool.disconnect()
            except Exception:  # a shard of a loop that is gone
                logger.warning("could not drop a subscriber's connections", exc_info=True)


class ReportingShard(RedisSingleShardConnection):  # type: ignore[misc]  # channels-redis is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _shards.add(self)

    def _ensure_redis(self) -> None:
        fresh = self._redis is None
        super()._ensure_redis()
        if fresh:
            self._pubsub = ReportingPubSub(self._redis.connection_pool)

    async def _do_receiving(self) -> None:
        """channels-redis's read loop, with a lost Redis reported once and retried with
        backoff (``gateway.observe.outage``) instead of a traceback every second.

        A cancel that meets the read's own 0.1 s timeout can come back as "no message"
        (redis-py returns None on a read timeout), and the loop would read on for ever while
        ``flush`` waits for it: the task's pending cancel request is checked each turn."""
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                             timeout=0.1)
                    REDIS.recovered(SUBSCRIBER)
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                if self._pubsub is not None:
                    self._pubsub.note_drop()
                await asyncio.sleep(REDIS.failed(SUBSCRIBER, exc))


_shards: weakref.WeakSet[ReportingShard] = weakref.WeakSet()


class PubSubChannelLayer(RedisPubSubChannelLayer):  # type: ignore[misc]
    """``RedisPubSubChannelLayer`` whose shards report their subscriber's reconnects."""

    cancel_forgets_channel = True  # a cancelled receive unsubscribes its channel

    def _get_layer(self) -> Any:
        fresh = asyncio.get_running_loop() not in self._layers
        layer = super()._get_layer()
        if fresh:  # no shard has connected yet: swap them before first use
            layer._shards = [ReportingShard(shard.host, layer) for shard in layer._shards]
        return layer
