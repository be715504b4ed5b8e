"""The one place where the ASGI stack is assembled. Read top to bottom."""

import os
from ipaddress import IPv4Network, IPv6Network
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway.api import http_application

django_http = http_application()  # sets Django up before the gateway imports models

from consumers.base import close_all_local  # noqa: E402
from gateway.api.server import (  # noqa: E402
    BoundedBody,
    Drain,
    Handshake,
    Lifespan,
    LocalSockets,
    OriginGuard,
    load_route_policies,
)

websocket = OriginGuard(
    Handshake(load_route_policies(settings.GATEWAY.routes_file)),
    allowed_origins=settings.GATEWAY.allowed_origins,
)

router = ProtocolTypeRouter(
    {
        # Django reads a whole body before any view, without a limit: bound it first.
        "http": BoundedBody(django_http, max_bytes=settings.GATEWAY.deployment.max_body_bytes,
                            seconds=settings.GATEWAY.deployment.body_timeout),
        "websocket": websocket,
        "lifespan": Lifespan(LocalSockets(close_all=close_all_local)),
    }
)


def behind_proxies(app: Any, proxies: tuple[IPv4Network | IPv6Network, ...]) -> Any:
    """X-Forwarded-For and -Proto count only from these proxies: they set the scope's
    client address and scheme (audit, HTTPS redirect, secure cookies)."""
    if not proxies:
        return app
    return ProxyHeadersMiddleware(app, trusted_hosts=[str(network) for network in proxies])


# Outermost: on SIGTERM (1001) or SIGUSR1 (1012) close every socket, then let the server stop.
application = Drain(behind_proxies(router, settings.GATEWAY.deployment.trusted_proxies),
                    close_all=close_all_local, seconds=settings.GATEWAY.deployment.drain_seconds)
