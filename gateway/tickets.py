"""One-time websocket tickets for clients that cannot send cookies or headers on a socket.

``POST /ws/ticket`` returns ``{"ticket": ..., "expires_in": 30}``. It is minted either by a
logged-in browser session (CSRF-protected) or with ``Authorization: Bearer <token>``. The
ticket is presented once, as subprotocol ``gateway.ticket.<ticket>`` or in an ``auth``
message, within 30 s, and yields the principal that minted it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from types import MappingProxyType
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from gateway.audit import audit
from gateway.models import WsTicket
from gateway.sessions import AUTH_KEY
from oidc.errors import OidcError
from oidc.types import CredentialKind, Principal

TICKET_TTL = 30.0


class InvalidTicket(OidcError):
    """Unknown, expired or already used ticket."""

    error = "invalid_ticket"
    status = "unauthenticated"


@dataclasses.dataclass(frozen=True)
class Redeemed:
    session_key: str | None
    principal: Principal | None  # set for tickets minted with a bearer token


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def _issue(request: HttpRequest, issuer: str, subject: str, **binding: Any) -> JsonResponse:
    ticket = secrets.token_urlsafe(32)
    now = time.time()
    WsTicket.objects.filter(expires_at__lt=now).delete()
    WsTicket.objects.create(ticket_hash=_hash(ticket), issuer=issuer, subject=subject,
                            expires_at=now + TICKET_TTL, **binding)
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
    from gateway.authn import principal_for_token

    try:
        principal = async_to_sync(principal_for_token)(token, CredentialKind.BEARER,
                                                       now=time.time())
    except OidcError as exc:
        return _refuse(request, exc.error, 401)
    snapshot = {**principal.as_dict(), "claims": dict(principal.claims), "kid": principal.kid,
                "jti_hash": principal.jti_hash}
    return _issue(request, principal.issuer, principal.subject, principal=snapshot)


@csrf_exempt  # the bearer path carries no cookie; the session path is CSRF-protected above
@require_POST
def mint_ticket(request: HttpRequest) -> JsonResponse:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return _mint_for_bearer(request, token.strip())
    return _mint_for_session(request)


def _principal_from_snapshot(snapshot: dict[str, Any]) -> Principal:
    return Principal(
        issuer=snapshot["issuer"], subject=snapshot["subject"], client_id=snapshot["client_id"],
        groups=frozenset(snapshot["groups"]), roles=frozenset(snapshot["roles"]),
        scopes=frozenset(snapshot["scopes"]), claims=MappingProxyType(snapshot["claims"]),
        expires_at=float(snapshot["expires_at"]), sid=snapshot["sid"],
        credential=CredentialKind.TICKET, kid=snapshot.get("kid"),
        jti_hash=snapshot.get("jti_hash"),
    )


async def redeem_ticket(ticket: str, *, now: float) -> Redeemed:
    """Consume a ticket atomically; return what it is bound to."""
    if not ticket or len(ticket) > 128:
        raise InvalidTicket()
    row = await WsTicket.objects.filter(ticket_hash=_hash(ticket)).afirst()
    if row is None:
        raise InvalidTicket()
    deleted, _ = await WsTicket.objects.filter(pk=row.pk).adelete()
    if deleted != 1 or row.expires_at <= now:
        raise InvalidTicket()  # lost the race to a concurrent use, or too late
    if row.principal is not None:
        return Redeemed(None, _principal_from_snapshot(row.principal))
    return Redeemed(row.session_key, None)
