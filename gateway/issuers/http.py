"""The process's HTTP clients for calls to identity providers, pooled and shared.

Discovery, JWKS, session refresh and introspection all go through ``client()``: one
``httpx.AsyncClient`` per event loop, so a handshake that needs introspection reuses a
kept-alive connection instead of opening (and for https, negotiating) a new one
(``gateway.bus.perprocess.PerLoop``: a pooled connection belongs to the loop that opened it).
The lifespan closes the worker's client at shutdown (``aclose``).

Sync code (the login callback and views run in a worker thread) uses ``sync_client()``,
one thread-safe ``httpx.Client`` per process.

Redirects are never followed: a provider endpoint that redirects is misconfigured, and a
redirect would carry client credentials elsewhere.
"""

from __future__ import annotations

import threading

import httpx

from gateway.bus.perprocess import PerLoop

TIMEOUT = 5.0
LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=30.0)

_clients = PerLoop(lambda: httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS,
                                             follow_redirects=False))
_sync: list[httpx.Client] = []
_lock = threading.Lock()


def client() -> httpx.AsyncClient:
    """The running loop's pooled client (made on first use)."""
    return _clients.get()


async def aclose() -> None:
    """Close the running loop's client and its connections (lifespan shutdown)."""
    await _clients.aclose()


def sync_client() -> httpx.Client:
    """The process's pooled client for sync code; httpx's Client is safe across threads."""
    with _lock:
        if not _sync or _sync[0].is_closed:
            _sync[:] = [httpx.Client(timeout=TIMEOUT, limits=LIMITS, follow_redirects=False)]
        return _sync[0]
