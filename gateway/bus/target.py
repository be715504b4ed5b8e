"""Where the gateway's Redis is: one server (``redis://``) or a master found through Sentinel.

``GATEWAY_REDIS_URL`` takes either form::

    redis://[[user]:password@]host:6379/0            (rediss:// for TLS, unix:// too)
    redis+sentinel://[[user]:password@]host:26379[,host:26379...]/service[/db]
                     [?sentinel_password=...]         (rediss+sentinel:// for TLS)

With TLS, ``ssl_ca_certs=``, ``ssl_certfile=`` and ``ssl_keyfile=`` (file paths) apply to the
sentinels and the data nodes alike, for a private CA and client certificates; any other
option is refused.

With Sentinel, every connection (the channel layer's, the ledger's, the watchdog's) asks
the sentinels for the current master of ``service``; after a failover, new connections
go to the new master. The user and password are the data nodes'; ``sentinel_password``
is the sentinels' own, if they require one.
"""

from __future__ import annotations

import functools
import logging
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ConstantBackoff

logger = logging.getLogger("gateway.bus")

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme: TLS
SERVER_SCHEMES = {"redis", "rediss", "unix"}
SENTINEL_PORT = 26379
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")  # file paths, rediss+sentinel only
SENTINEL_OPTIONS = ("sentinel_password", *TLS_OPTIONS)


class RedisUrlError(ValueError):
    """``GATEWAY_REDIS_URL`` cannot be used; the message names the fix (never the password)."""


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    ssl: bool
    username: str | None
    password: str | None
    sentinel_password: str | None
    tls_files: tuple[tuple[str, str], ...] = ()  # (TLS_OPTIONS name, path)

    def _tls(self) -> dict[str, Any]:
        return {"ssl": True, **dict(self.tls_files)} if self.ssl else {}

    def _data_node(self) -> dict[str, Any]:
        found: dict[str, Any] = {"db": self.db, **self._tls()}
        if self.username:
            found["username"] = self.username
        if self.password:
            found["password"] = self.password
        return found

    def _sentinel_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        found = {k: v for k, v in options.items() if k.startswith("socket_")} | self._tls()
        if self.sentinel_password:
            found["password"] = self.sentinel_password
        return found

    def sentinel(self, **options: Any) -> Sentinel:
        return Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs(options))

    def client(self, **options: Any) -> redis.Redis:
        master: redis.Redis = self.sentinel(**options).master_for(
            self.service, **self._data_node(), **options)
        _followers.add(master)
        return master

    def layer_host(self) -> dict[str, Any]:
        """channels-redis's form of a Sentinel host (``create_pool``)."""
        return {"master_name": self.service, "sentinels": list(self.sentinels),
                "sentinel_kwargs": self._sentinel_kwargs({}), **self._data_node()}


@functools.cache
def parse_sentinel(url: str) -> SentinelTarget | None:
    """The Sentinel target of ``url``, or None for a plain server URL."""
    parts = urlsplit(url)
    if parts.scheme in SERVER_SCHEMES:
        return None
    if parts.scheme not in SENTINEL_SCHEMES:
        raise RedisUrlError(f"GATEWAY_REDIS_URL has scheme {parts.scheme!r}: use redis://host:6379/0,"
                            " rediss://, unix:// or redis+sentinel://host:26379/service/0")
    path = [p for p in parts.path.split("/") if p]
    if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisUrlError("GATEWAY_REDIS_URL: a Sentinel URL ends with /service or"
                            " /service/db, as in redis+sentinel://host:26379/mymaster/0")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - set(SENTINEL_OPTIONS))
    if unknown:
        raise RedisUrlError(f"GATEWAY_REDIS_URL: unknown option(s) {unknown}; a Sentinel URL takes"
                            f" {', '.join(SENTINEL_OPTIONS)}")
    tls_files = tuple((name, query[name][0]) for name in TLS_OPTIONS if name in query)
    if tls_files and not SENTINEL_SCHEMES[parts.scheme]:
        raise RedisUrlError("GATEWAY_REDIS_URL: ssl_* options need TLS: use rediss+sentinel://")
    return SentinelTarget(
        sentinels=_addresses(parts.netloc.rpartition("@")[2]),
        service=unquote(path[0]), db=int(path[1]) if len(path) == 2 else 0,
        ssl=SENTINEL_SCHEMES[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sentinel_password=query.get("sentinel_password", [None])[0],
        tls_files=tls_files,
    )


def _addresses(hosts: str) -> tuple[tuple[str, int], ...]:
    return tuple(_address(item.strip()) for item in hosts.split(","))


def _address(item: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    host, port, rest = item, "", ""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host or (port and not port.isdigit()) or (rest and not rest.startswith(":")):
        raise RedisUrlError(f"GATEWAY_REDIS_URL: sentinel address {item!r} is not host or"
                            " host:port")
    return host, int(port) if port else SENTINEL_PORT


_followers: weakref.WeakSet[redis.Redis] = weakref.WeakSet()


async def drop_master_connections() -> None:
    """Disconnect every client made here for a Sentinel target: its next command connects
    to the master the sentinels name now (connections made earlier stay on the old master
    after an ordered failover until Sentinel reconfigures it, up to about 10 s)."""
    for client in list(_followers):
        try:
            await client.connection_pool.disconnect()
        except Exception:  # a client of a loop that is gone; its next use reconnects anyway
            logger.warning("could not drop a Redis client's connections", exc_info=True)


def connect(url: str, **options: Any) -> redis.Redis:
    """A client of the current master at ``url`` (plain or Sentinel), with ``options``
    (socket timeouts, retry) applied to its connections."""
    target = parse_sentinel(url)
    if target is None:
        return redis.from_url(url, **options)
    return target.client(**options)


def layer_host(url: str) -> dict[str, Any]:
    """The channel layer's ``hosts`` entry for ``url``. Its connections retry a dropped
    connection twice, 0.2 s apart, then fail (redis-py's default backs off for up to
    seconds): the pub/sub layer's subscriber, which the bus waits for after an outage
    (``gateway.bus.redis``), is back within about a second of Redis."""
    target = parse_sentinel(url)
    host = {"address": url} if target is None else target.layer_host()
    return {**host, "retry": Retry(ConstantBackoff(0.2), 2), "socket_connect_timeout": 2.0}
