"""The process's HTTP clients for calls to identity providers, pooled and shared.

Discovery, JWKS, session refresh and introspection all go through ``client()``: one
``httpx.AsyncClient`` per event loop, so a handshake that needs introspection reuses a
kept-alive connection instead of opening (and for https, negotiating) a new one. A pooled
connection belongs to the loop that opened it, so the client is keyed by the running loop:
a uvicorn worker has one loop for its life; tests and ``async_to_sync`` make short-lived
ones, whose clients are dropped once their loop is closed. The lifespan closes the worker's
client at shutdown (``aclose``).

Sync code (the login callback and views run in a worker thread) uses ``sync_client()``,
one thread-safe ``httpx.Client`` per process.

Redirects are never followed: a provider endpoint that redirects is misconfigured, and a
redirect would carry client credentials elsewhere.
"""

from __future__ import annotations

import asyncio
import threading

import httpx

TIMEOUT = 5.0
LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=30.0)

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
_sync: list[httpx.Client] = []
_lock = threading.Lock()  # loops in other threads (async_to_sync) make their own clients


def client() -> httpx.AsyncClient:
    """The running loop's pooled client (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is not None and not found.is_closed:
        return found
    with _lock:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]  # its connections died with their loop
        found = _clients[loop] = httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS,
                                                   follow_redirects=False)
    return found


async def aclose() -> None:
    """Close the running loop's client and its connections (lifespan shutdown)."""
    with _lock:
        found = _clients.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.aclose()


def sync_client() -> httpx.Client:
    """The process's pooled client for sync code; httpx's Client is safe across threads."""
    with _lock:
        if not _sync or _sync[0].is_closed:
            _sync[:] = [httpx.Client(timeout=TIMEOUT, limits=LIMITS, follow_redirects=False)]
        return _sync[0]
