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

With shards, channels-redis picks a group's shard by hashing its name over the list in
``GATEWAY_REDIS_SHARDS``: a process with another list or order would join and send to
other shards, and miss logouts and revocations. So the processes agree on it
(:class:`ShardAgreement`): the first list seen stays in the gateway's own Redis while any
process with it runs, and a process with another list counts the bus as down (handshakes
refused, ``/readyz`` 503 naming the fix) until it is restarted with that list, or until
every process with it is gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from gateway.bus.health import bus
from gateway.bus.redis import drop_subscriber_connections, subscribers_connected
from gateway.bus.target import connect, drop_master_connections, parse_sentinel
from gateway.observe.metrics import BUS_BREAKS
from gateway.observe.outage import REDIS
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.live import CloseAll
from gateway.sockets.switchboard import rejoin_groups

logger = logging.getLogger("gateway.buswatch")


WATCHDOG = "bus watchdog"
SHARDS_KEY = "gateway:bus:shards"
SHARDS_TTL = 30  # seconds the list outlives the last process that holds it


async def watch_bus(urls: Sequence[str], close_all: CloseAll, *, shards: Sequence[str] = (),
                    interval: float = 0.5) -> None:
    """Check every Redis of the bus (``urls``: the gateway's own first, then each shard of
    the layer), and that every process lists the same ``shards``."""
    targets = [Watched.of(url) for url in urls]
    agreement = ShardAgreement(targets[0].client, shard_list_id(shards)) if shards else None
    watch = BusWatch(close_all, targets, agreement)
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


def shard_list_id(urls: Sequence[str]) -> str:
    """The shard list, in order, without credentials or options, as a short hash."""
    bare = [urlsplit(url)._replace(query="", fragment="") for url in urls]
    listed = "\n".join(part._replace(netloc=part.netloc.rpartition("@")[2]).geturl() for part in bare)
    return hashlib.sha256(listed.encode()).hexdigest()[:16]


@dataclass
class ShardAgreement:
    """Whether this process's shard list is the one the running processes use (the first
    one written to the gateway's own Redis, kept alive while any process with it runs)."""

    client: redis.Redis
    mine: str

    async def agreed(self) -> bool:
        """Raises if the gateway's own Redis does not answer."""
        await self.client.set(SHARDS_KEY, self.mine, ex=SHARDS_TTL, nx=True)
        current = await self.client.get(SHARDS_KEY)
        listed = current.decode() if isinstance(current, bytes) else current
        if listed == self.mine:
            await self.client.expire(SHARDS_KEY, SHARDS_TTL)
            return True
        return False


@dataclass
class BusWatch:
    close_all: CloseAll
    targets: list[Watched]
    agreement: ShardAgreement | None = None
    epoch: int = field(default_factory=lambda: bus.epoch)  # the last break acted on
    rejoined: int = field(default_factory=lambda: bus.epoch)  # groups joined since this break

    async def check(self) -> None:
        if any([await watched.failed_over() for watched in self.targets]):
            await self._failed_over()
        answered = True
        for watched in self.targets:
            try:
                if await watched.replaced():
                    if not REDIS.lost:  # else the outage's one line when it is back says it
                        logger.warning("message bus replaced (Redis restarted or failed over):"
                                       " closing local sockets with 1011")
                    bus.broken()
            except (redis.RedisError, OSError):
                answered = False
        if not answered:
            self._lost("a Redis of the bus does not answer")
        elif not await self._shards_agree():
            self._lost(None)  # not an outage: _shards_agree says what to fix
        elif not subscribers_connected():
            self._lost("the channel layer's subscriber is disconnected")
        else:
            self._back()
        await self._act()

    async def _shards_agree(self) -> bool:
        if self.agreement is None:
            return True
        try:
            agreed = await self.agreement.agreed()
        except (redis.RedisError, OSError):
            return False
        if not agreed and bus.disagreement is None:
            logger.error("GATEWAY_REDIS_SHARDS differs from the list the running gateways use"
                         " (in another order or with other servers): refusing sockets until this"
                         " process is restarted with the same list, or no process with the"
                         " other list is left")
        bus.disagreement = None if agreed else (
            "bus: GATEWAY_REDIS_SHARDS differs from the running gateways' list; every gateway"
            " must list the same shards in the same order")
        return agreed

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

    def _lost(self, outage: str | None) -> None:
        """The bus is down; an ``outage`` is reported once (``gateway.observe.outage``)."""
        if outage is not None:
            REDIS.failed(WATCHDOG, outage)
        if bus.up:
            bus.broken()
        bus.up = False

    def _back(self) -> None:
        REDIS.recovered(WATCHDOG)
        bus.up = True
