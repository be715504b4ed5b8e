"""Serving the gateway: what a server operator wires around the websocket app.

    from gateway.api.server import Drain, Lifespan, LocalSockets, healthz, readyz

The standalone service's ``config/`` uses these; a host project takes the ones it wants.
Every name loads from its home module on first use (``gateway.api._lazy``), so a settings
module or a launcher may import this before ``django.setup()``. docs/library.md,
"Reference", describes each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.api._lazy import load

if TYPE_CHECKING:
    from gateway.bus.lazyqueue import LazyQueue
    from gateway.bus.memory import FlatInMemoryChannelLayer
    from gateway.bus.redis import PubSubChannelLayer
    from gateway.bus.target import layer_host
    from gateway.conf.values import read_bool, read_int, read_seconds
    from gateway.console.views import console
    from gateway.handshake.middleware import Handshake, OriginGuard
    from gateway.handshake.pacing import turns
    from gateway.handshake.routes import load_route_policies
    from gateway.login.adminfresh import admin_follows_provider
    from gateway.login.views import home
    from gateway.ops.bodylimit import BoundedBody
    from gateway.ops.closegate import ended_streams, lost_connections
    from gateway.ops.drain import Drain
    from gateway.ops.health import healthz, readyz
    from gateway.ops.hostcheck import host_check
    from gateway.ops.lifespan import Lifespan
    from gateway.ops.scrape import metrics_view
    from gateway.sockets.live import LocalSockets
    from gateway.sockets.writenow import EXTENSION as WRITE_NOW_EXTENSION

_HOMES = {
    # ASGI pieces, from the outside in
    "Drain": "gateway.ops.drain",  # SIGTERM/SIGUSR1: close every socket, then let the server stop
    "BoundedBody": "gateway.ops.bodylimit",  # an HTTP body limit and deadline before Django
    "Lifespan": "gateway.ops.lifespan",  # keys before serving, refresh loops, bus watchdog
    "LocalSockets": "gateway.sockets.live",  # what the lifespan and drain may do to the sockets
    "OriginGuard": "gateway.handshake.middleware",  # exact Origin allowlist
    "Handshake": "gateway.handshake.middleware",  # routes-file policies, exact paths
    "load_route_policies": "gateway.handshake.routes",
    # views
    "healthz": "gateway.ops.health",
    "readyz": "gateway.ops.health",
    "metrics_view": "gateway.ops.scrape",
    "home": "gateway.login.views",
    "console": "gateway.console.views",
    # what a server's protocol calls (config/hardening.py: uvicorn)
    "turns": "gateway.handshake.pacing",
    "ended_streams": "gateway.ops.closegate",
    "lost_connections": "gateway.ops.closegate",
    "WRITE_NOW_EXTENSION": "gateway.sockets.writenow:EXTENSION",
    "LazyQueue": "gateway.bus.lazyqueue",  # a receive queue of a few bytes while idle
    # settings (dotted paths: "gateway.api.server.host_check") and a launcher's own variables
    "host_check": "gateway.ops.hostcheck",  # MIDDLEWARE, first: 400 disallowed_host, audited
    "admin_follows_provider": "gateway.login.adminfresh",  # MIDDLEWARE, after authentication
    "PubSubChannelLayer": "gateway.bus.redis",  # CHANNEL_LAYERS backends
    "FlatInMemoryChannelLayer": "gateway.bus.memory",
    "layer_host": "gateway.bus.target",
    "read_bool": "gateway.conf.values",
    "read_int": "gateway.conf.values",
    "read_seconds": "gateway.conf.values",
}


def __getattr__(name: str) -> Any:
    return load(__name__, _HOMES, name)


__all__ = [
    "WRITE_NOW_EXTENSION",
    "BoundedBody",
    "Drain",
    "FlatInMemoryChannelLayer",
    "Handshake",
    "LazyQueue",
    "Lifespan",
    "LocalSockets",
    "OriginGuard",
    "PubSubChannelLayer",
    "admin_follows_provider",
    "console",
    "ended_streams",
    "healthz",
    "home",
    "host_check",
    "layer_host",
    "load_route_policies",
    "lost_connections",
    "metrics_view",
    "read_bool",
    "read_int",
    "read_seconds",
    "readyz",
    "turns",
]
