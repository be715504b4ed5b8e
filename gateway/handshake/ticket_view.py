"""``POST /ws/ticket``: mint a one-time websocket ticket for a session or a bearer token."""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from gateway.handshake.authn import principal_for_token
from gateway.handshake.tickets import TICKET_TTL, principal_snapshot, store_ticket
from gateway.login.sessions import AUTH_KEY
from gateway.observe.audit import audit
from oidc.errors import OidcError
from oidc.types import CredentialKind


def _issue(request: HttpRequest, issuer: str, subject: str, **binding: Any) -> JsonResponse:
    try:
        ticket = store_ticket(issuer, subject, **binding)
    except OidcError as exc:  # too many waiting, or Redis did not answer
        return _refuse(request, exc.error, 503)
    audit("ticket", "allow", "minted", issuer=issuer, subject=subject,
          remote=request.META.get("REMOTE_ADDR"))
    response = JsonResponse({"ticket": ticket, "expires_in": int(TICKET_TTL)})
    response["Cache-Control"] = "no-store"
    return response


def _refuse(request: HttpRequest, reason: str, status: int) -> JsonResponse:
    audit("ticket", "deny", reason, remote=request.META.get("REMOTE_ADDR"))
    response = JsonResponse({"error": reason}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@csrf_protect
def _mint_for_session(request: HttpRequest) -> JsonResponse:
    claims = (request.session.get(AUTH_KEY) or {}).get("claims")
    if not request.user.is_authenticated or not claims or request.session.session_key is None:
        return _refuse(request, "no_session", 401)
    return _issue(request, claims["issuer"], claims["subject"],
                  session_key=request.session.session_key)


def _mint_for_bearer(request: HttpRequest, token: str) -> JsonResponse:
    try:
        principal = async_to_sync(principal_for_token)(token, CredentialKind.BEARER,
                                                       now=time.time())
    except OidcError as exc:
        return _refuse(request, exc.error, 401)
    return _issue(request, principal.issuer, principal.subject,
                  principal=principal_snapshot(principal))


def _allowed_origin(request: HttpRequest) -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin in settings.GATEWAY.allowed_origins else None


def _cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Pages on the allowed websocket origins may mint with a bearer token (no cookies:
    ``Access-Control-Allow-Credentials`` is never sent, so sessions stay same-origin)."""
    response["Vary"] = "Origin"
    origin = _allowed_origin(request)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
    return response


def _preflight(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(status=204)
    if _allowed_origin(request) is not None:
        response["Access-Control-Allow-Methods"] = "POST"
        response["Access-Control-Allow-Headers"] = "Authorization"
        response["Access-Control-Max-Age"] = "600"
    return _cors(request, response)


@csrf_exempt  # the bearer path carries no cookie; the session path is CSRF-protected above
@require_http_methods(["POST", "OPTIONS"])
def mint_ticket(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return _cors(request, _mint_for_bearer(request, token.strip()))
    return _mint_for_session(request)
