"""ASGI lifespan: startup tunes the garbage collector, background tasks stop at shutdown."""

from __future__ import annotations

import asyncio
import gc

from config.asgi import application
from gateway.ops.lifespan import GC_THRESHOLDS


async def test_startup_tunes_the_collector_and_shutdown_completes() -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict) -> None:
        sent.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(application({"type": "lifespan"}, inbox.get, send))
    while not sent:
        await asyncio.sleep(0.01)
    try:
        assert sent == ["lifespan.startup.complete"]
        assert gc.get_freeze_count() > 10_000  # Django and the apps, not a handful
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 5)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
