"""ASGI lifespan: load issuers' discovery and keys, then keep them fresh in the background."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

from channels.db import aclose_old_connections
from django.conf import settings

from consumers.base import renew_memberships
from gateway.buswatch import watch_bus
from gateway.providers import registry

logger = logging.getLogger("gateway.lifespan")


async def close_stale_db_connections(period: float = 60.0) -> None:
    """Replace Channels' per-socket close_old_connections with one call a minute."""
    while True:
        await asyncio.sleep(period)
        await aclose_old_connections()


GC_THRESHOLDS = (10_000, 10, 10)  # Python's default first threshold is 700


def tune_garbage_collector() -> None:
    """Fewer, larger collections, and none of them over the framework itself.

    ``gc.freeze()`` moves everything loaded at startup (Django, apps, settings) out of
    the collector's sight; objects frozen here live as long as the process anyway. A
    handshake allocates a few hundred containers, so with the default first threshold
    (700) a collection ran every few handshakes and each one scanned the live sockets'
    objects again. In process, both changes together took GC from 15-65 µs to about
    2 µs per handshake (``bench/README.md``); a young collection now pauses 1-2 ms
    (at most 9 ms seen).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def renew_group_memberships(period: float = 3600.0) -> None:
    """Keep every socket's groups younger than the layer's one-day group expiry."""
    while True:
        await asyncio.sleep(period)
        await renew_memberships()


class Lifespan:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tune_garbage_collector()
                tasks = [asyncio.create_task(registry.load_all_with_retry()),
                         asyncio.create_task(registry.run_refresh_loop()),
                         asyncio.create_task(close_stale_db_connections()),
                         asyncio.create_task(renew_group_memberships())]
                if settings.GATEWAY.redis_url:
                    tasks.append(asyncio.create_task(watch_bus(settings.GATEWAY.redis_url)))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return
