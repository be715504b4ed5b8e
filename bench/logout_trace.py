"""Where a back-channel logout's time goes: a traced gateway for ``bench/logout.py --trace``.

Serves ``config.asgi.application`` unchanged, with timestamps (``time.time()``, one JSON
line each, appended to ``BENCH_LOGOUT_TRACE``) at the points a logout passes through:

- ``verify`` / ``verified``: the logout token's checks (``backchannel._verify``);
- ``end`` / ``announce`` / ``announced`` / ``ended``: ``end_sessions``: the database work
  is ``end`` to ``announce``, the session-cache broadcast ``announce`` to ``announced``,
  the ``gateway.revoke`` group sends ``announced`` to ``ended``;
- ``revoke`` / ``closed``: per open socket, its revoke event handled and its close frame
  handed to the server (a socket gets one event per group it is in; only the first counts);
- ``lost``: a websocket's connection gone (the closing handshake done, the server's
  ``connection_lost``);
- ``gc``: a collection over ``GC_MS`` (generation, ms);
- ``stall``: the loop unable to run a ``TICK`` timer for over ``STALL_MS`` (wall clock).

Bench only: never imported by the service.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from config.asgi import application as _production
from config.hardening import WebSocketProtocol
from consumers.base import GatewayConsumer
from gateway.login import backchannel, session_cache

TRACE = Path(os.environ["BENCH_LOGOUT_TRACE"])
GC_MS = 2.0
STALL_MS = 10.0
TICK = 0.002
_PID = os.getpid()
_out = TRACE.open("a", buffering=1)


def mark(what: str, **fields: Any) -> None:
    _out.write(json.dumps({"pid": _PID, "t": time.time(), "what": what, **fields}) + "\n")


def _timed(function: Callable[..., Awaitable[Any]], before: str, after: str
           ) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(before)
        try:
            return await function(*args, **kwargs)
        finally:
            mark(after)
    return wrapper


backchannel._verify = _timed(backchannel._verify, "verify", "verified")  # type: ignore[assignment]
backchannel.end_sessions = _timed(backchannel.end_sessions, "end", "ended")  # type: ignore[assignment]
backchannel.announce = _timed(  # type: ignore[attr-defined,assignment]
    session_cache.announce, "announce", "announced")

_revoke = GatewayConsumer.gateway_revoke


async def _traced_revoke(self: GatewayConsumer, event: dict[str, Any]) -> None:
    if not self.open:  # closed by the session's other group event
        await _revoke(self, event)
        return
    mark("revoke")
    await _revoke(self, event)
    mark("closed")

GatewayConsumer.gateway_revoke = _traced_revoke  # type: ignore[method-assign]

_lost = WebSocketProtocol.connection_lost


def _traced_lost(self: WebSocketProtocol, exc: Exception | None) -> None:
    mark("lost")
    _lost(self, exc)

WebSocketProtocol.connection_lost = _traced_lost  # type: ignore[method-assign]

_gc_started = [0.0]


def _gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    took = (time.perf_counter() - _gc_started[0]) * 1000
    if took > GC_MS:
        mark("gc", gen=info["generation"], ms=round(took, 1))

gc.callbacks.append(_gc)


async def _watch_loop() -> None:
    last = time.perf_counter()
    while True:
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        if (now - last - TICK) * 1000 > STALL_MS:
            mark("stall", ms=round((now - last - TICK) * 1000, 1))
        last = now


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan" and not getattr(application, "watching", False):
        application.watching = True  # type: ignore[attr-defined]
        watcher = asyncio.get_running_loop().create_task(_watch_loop())
        watcher.add_done_callback(lambda _: None)
        application.watcher = watcher  # type: ignore[attr-defined]
    await _production(scope, receive, send)
