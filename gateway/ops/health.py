"""Liveness and readiness.

``/healthz``: the process answers (liveness; it never checks dependencies, so an outage
of Redis does not make an orchestrator restart every instance at once).
``/readyz``: this instance can serve sockets: the database answers, Redis answers when
configured (and, with shards, this process lists them as the others do), and the login
issuer's keys are loaded. Otherwise 503, naming each failing
dependency, so a load balancer stops sending traffic here.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from gateway.bus.health import bus
from gateway.bus.target import connect
from gateway.issuers.registry import registry

CHECK_TIMEOUT = 1.0


def _database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def check_database() -> str | None:
    try:
        await asyncio.wait_for(sync_to_async(_database_answers)(), CHECK_TIMEOUT)
    except Exception as exc:
        return f"database: {type(exc).__name__}"
    return None


_redis: dict[str, redis.Redis] = {}


async def check_redis() -> str | None:
    """What the first Redis of the bus (own state, then each shard) that does not answer
    raised, all asked at once."""
    failures = await asyncio.gather(*(_ping(url) for url in settings.GATEWAY.bus_urls))
    return next((failure for failure in failures if failure), None)


async def _ping(url: str) -> str | None:
    client = _redis.get(url) or _redis.setdefault(
        url, connect(url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT))
    try:
        await asyncio.wait_for(client.ping(), CHECK_TIMEOUT)
    except Exception as exc:
        return f"redis: {type(exc).__name__}"
    return None


async def check_shards() -> str | None:
    return bus.disagreement


async def check_keys() -> str | None:
    keys = registry.keys.get(settings.GATEWAY.issuer)
    if keys is None or not keys.loaded:
        return "keys: the login issuer's signing keys are not loaded yet"
    return None


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    results = await asyncio.gather(check_database(), check_redis(), check_shards(), check_keys())
    failing = [result for result in results if result is not None]
    loaded = sorted(issuer for issuer, keys in registry.keys.items() if keys.loaded)
    body = {"status": "not_ready" if failing else "ready", "failing": failing,
            "issuers_loaded": loaded}
    return JsonResponse(body, status=503 if failing else 200)
