"""Startup on first use, for servers without an ASGI lifespan (daphne under ``runserver``).

The service's lifespan (``gateway.ops.lifespan``) loads the issuers' discovery and keys before
serving and keeps them fresh. A host project's ASGI app may have no lifespan at all: the first
websocket handshake then does the same work once per event loop, and waits for it (bounded,
like the lifespan's first load) so that it is not refused with ``keys_unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from gateway.issuers.registry import registry
from gateway.login.session_cache import listen as listen_for_session_revocations

# Startup waits this long for the issuers' keys before serving, so a new worker does not
# deny its first handshakes with keys_unavailable; an unreachable provider fails fast.
FIRST_LOAD_WAIT = 10.0

_started: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
    weakref.WeakKeyDictionary())
_TASKS: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def load_issuers_before_serving() -> None:
    """One load attempt per issuer, bounded; the retry loop takes over what is left (used
    by the service's lifespan too)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(registry.load_each(registry.unloaded()), FIRST_LOAD_WAIT)


async def _start() -> None:
    await load_issuers_before_serving()
    _keep(asyncio.create_task(registry.load_all_with_retry()))
    _keep(asyncio.create_task(registry.run_refresh_loop()))
    _keep(asyncio.create_task(listen_for_session_revocations()))


async def ensure_started() -> None:
    """Once per loop: nothing to do when every issuer is loaded (a lifespan ran)."""
    loop = asyncio.get_running_loop()
    started = _started.get(loop)
    if started is None:
        if not registry.unloaded():
            return
        started = _started[loop] = asyncio.ensure_future(_start())
    await asyncio.shield(started)
