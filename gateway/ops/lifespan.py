"""ASGI lifespan: load issuers' discovery and keys before serving, then keep them fresh."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import aclose_old_connections
from django.conf import settings

from gateway.issuers.http import aclose as close_provider_connections
from gateway.issuers.registry import registry
from gateway.login.session_cache import listen as listen_for_session_revocations
from gateway.ops.buswatch import watch_bus
from gateway.ops.gcpolicy import keep_collections_young
from gateway.ops.loopwatch import probe
from gateway.ops.ondemand import load_issuers_before_serving
from gateway.sockets.live import LocalSockets
from gateway.sockets.switchboard import renew_groups

logger = logging.getLogger("gateway.lifespan")


async def every(period: float, action: Callable[[], Awaitable[object]]) -> None:
    """Run ``action`` once per ``period`` seconds, for as long as the process serves."""
    while True:
        await asyncio.sleep(period)
        await action()


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


class Lifespan:
    """Startup and shutdown of one process; ``sockets`` comes from the consumers."""

    def __init__(self, sockets: LocalSockets) -> None:
        self.sockets = sockets

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tune_garbage_collector()
                await load_issuers_before_serving()
                tasks = [asyncio.create_task(registry.load_all_with_retry()),
                         asyncio.create_task(registry.run_refresh_loop()),
                         # Channels' per-message close_old_connections, once a minute:
                         asyncio.create_task(every(60.0, aclose_old_connections)),
                         # younger than the layers' one-day group expiry:
                         asyncio.create_task(every(3600.0, renew_groups)),
                         # no full collection over the live sockets (gateway/ops/gcpolicy.py):
                         asyncio.create_task(keep_collections_young()),
                         # the session cache is on only while this hears the logouts:
                         asyncio.create_task(listen_for_session_revocations())]
                if settings.GATEWAY.bus_urls:
                    tasks.append(asyncio.create_task(
                        watch_bus(settings.GATEWAY.bus_urls, self.sockets.close_all,
                                  shards=settings.GATEWAY.redis_shards)))
                lag_probe = settings.GATEWAY.deployment.loop_lag_probe  # opt-in, for benchmarks
                if lag_probe is not None:
                    tasks.append(asyncio.create_task(probe(lag_probe)))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await close_provider_connections()
                await send({"type": "lifespan.shutdown.complete"})
                return
