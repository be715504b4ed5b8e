"""ASGI lifespan: load issuers' discovery and keys, then keep them fresh in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from django.conf import settings

from gateway.buswatch import watch_bus
from gateway.providers import registry

logger = logging.getLogger("gateway.lifespan")


class Lifespan:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        tasks: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tasks = [asyncio.create_task(registry.load_all_with_retry()),
                         asyncio.create_task(registry.run_refresh_loop())]
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
