"""ASGI lifespan: load issuers' discovery and keys, then keep them fresh in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return
