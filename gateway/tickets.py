"""One-time websocket tickets for browser JavaScript that cannot send cookies or headers.

``POST /ws/ticket`` (logged in, CSRF-protected) returns ``{"ticket": ..., "expires_in": 30}``.
The ticket is presented once, as subprotocol ``gateway.ticket.<ticket>`` or in an ``auth``
message, within 30 s, and yields the minting session's principal.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from gateway.audit import audit
from gateway.models import WsTicket
from gateway.sessions import AUTH_KEY
from oidc.errors import OidcError

TICKET_TTL = 30.0


class InvalidTicket(OidcError):
    """Unknown, expired or already used ticket."""

    error = "invalid_ticket"
    status = "unauthenticated"


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


@require_POST
@login_required(login_url=None)
def mint_ticket(request: HttpRequest) -> JsonResponse:
    claims = (request.session.get(AUTH_KEY) or {}).get("claims")
    if not claims or request.session.session_key is None:
        return JsonResponse({"error": "no_session"}, status=401)
    ticket = secrets.token_urlsafe(32)
    now = time.time()
    WsTicket.objects.filter(expires_at__lt=now).delete()
    WsTicket.objects.create(ticket_hash=_hash(ticket), session_key=request.session.session_key,
                            issuer=claims["issuer"], subject=claims["subject"],
                            expires_at=now + TICKET_TTL)
    audit("ticket", "allow", "minted", issuer=claims["issuer"], subject=claims["subject"],
          remote=request.META.get("REMOTE_ADDR"))
    response = JsonResponse({"ticket": ticket, "expires_in": int(TICKET_TTL)})
    response["Cache-Control"] = "no-store"
    return response


async def redeem_ticket(ticket: str, *, now: float) -> str:
    """Consume a ticket atomically; return the session key it is bound to."""
    if not ticket or len(ticket) > 128:
        raise InvalidTicket()
    row = await WsTicket.objects.filter(ticket_hash=_hash(ticket)).afirst()
    if row is None:
        raise InvalidTicket()
    deleted, _ = await WsTicket.objects.filter(pk=row.pk).adelete()
    if deleted != 1 or row.expires_at <= now:
        raise InvalidTicket()  # lost the race to a concurrent use, or too late
    return row.session_key
