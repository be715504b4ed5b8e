"""``/console/``: a signed-in user's live view of the gateway, built on ``client.js``.

The page gets its starting state as JSON (``json_script``); everything after that comes
over the websocket (welcome, channels, messages), so the page shows what a client sees.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from gateway.grants.store import cache
from gateway.login.sessions import AUTH_KEY, principal_from_session
from gateway.sockets.envelope import granted
from oidc.grants import operations_by_target

EVENTS_ROUTE = "/ws/events/"


def websocket_url(public_url: str, path: str) -> str:
    """The public URL with a websocket scheme: https gives wss, http gives ws."""
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


async def _console_config(request: HttpRequest, stored: dict[str, Any]) -> dict[str, Any] | None:
    principal = principal_from_session(stored)
    if principal is None:
        return None
    snapshot = await cache.current()
    user = await request.auser()
    return {
        "websocket_url": websocket_url(settings.GATEWAY.public_url, EVENTS_ROUTE),
        "principal": {"subject": principal.subject, "issuer": principal.issuer,
                      "username": user.get_username(), "groups": sorted(principal.groups),
                      "roles": sorted(principal.roles), "expires_at": principal.expires_at},
        "channels": granted(operations_by_target(principal, snapshot.grants)),
        "logout_url": "/oidc/logout/",
    }


@never_cache
async def console(request: HttpRequest) -> HttpResponse:
    stored = await request.session.aget(AUTH_KEY)
    config = await _console_config(request, stored) if isinstance(stored, dict) else None
    if config is None:
        return HttpResponseRedirect("/oidc/authenticate/?next=/console/")
    return render(request, "gateway/console.html", {"console_config": config})
