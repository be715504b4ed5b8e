"""``/metrics`` for Prometheus, closed unless allowed (docs/deploy.md, "Metrics").

A scrape is allowed from ``GATEWAY_METRICS_NETWORKS``, or with a bearer access token
that carries ``GATEWAY_METRICS_SCOPE``. Anything else gets 401 (no or bad token) or
403 (token without the scope), and the refusal is audited.
"""

from __future__ import annotations

import ipaddress
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.handshake.authn import principal_for_token
from gateway.observe.audit import audit
from oidc.errors import OidcError
from oidc.types import CredentialKind


def _from_allowed_network(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(address in network for network in settings.GATEWAY.deployment.metrics_networks)


def _refuse(request: HttpRequest, status: int, reason: str, challenge: str) -> JsonResponse:
    audit("metrics", "deny", reason, remote=request.META.get("REMOTE_ADDR"))
    response = JsonResponse({"error": reason}, status=status)
    response["WWW-Authenticate"] = challenge
    return response


@never_cache
async def metrics_view(request: HttpRequest) -> HttpResponse:
    if _from_allowed_network(request):
        return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
    scope = settings.GATEWAY.deployment.metrics_scope
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(request, 401, "not_authenticated", 'Bearer realm="gateway"')
    try:
        principal = await principal_for_token(token.strip(), CredentialKind.BEARER, now=time.time())
    except OidcError as exc:
        return _refuse(request, 401, exc.error, 'Bearer realm="gateway", error="invalid_token"')
    if scope not in principal.scopes:
        return _refuse(request, 403, "insufficient_scope",
                       f'Bearer error="insufficient_scope", scope="{scope}"')
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
