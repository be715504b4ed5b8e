"""OpenID Connect Back-Channel Logout 1.0 receiver: ``POST /oidc/backchannel-logout/``.

A valid logout token deletes every Django session of its `sid` (or of its subject
when there is no `sid`) and closes their sockets, and every socket carrying that
`sid` or subject, on every gateway process, with 4401. An invalid token gets
HTTP 400 and changes nothing (§2.8).

The database work before the sockets are told is one hop to Django's database thread and
one transaction: the replay check (§2.6 item 10) and the deletes of the sessions and their
bindings. Each hop and each commit waits for a thread and (on SQLite) the disk; on a loaded
machine the six hops and four commits this took before put tens of milliseconds ahead of
the first socket's close (``bench/logout.py --trace``). A replayed token changes nothing.
"""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from gateway.issuers.registry import registry
from gateway.login.session_cache import announce
from gateway.login.sessions import session_store_class
from gateway.models import SeenLogoutToken, SessionBinding
from gateway.observe.audit import audit
from gateway.sockets.addressing import revoke, session_group, sid_group, subject_group
from oidc.errors import OidcError, ReplayedToken, UnknownIssuer
from oidc.jws import peek
from oidc.logout import LogoutToken, replay_key, verify_logout_token

MAX_BODY = 32 * 1024


def _reply(status: int, error: str | None = None) -> JsonResponse:
    body = {"error": "invalid_request", "error_description": error} if error else {}
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


async def _verify(raw: str) -> tuple[LogoutToken, float]:
    """The token's signature and claims; and until when its ``jti`` must be remembered."""
    issuer = peek(raw, max_bytes=MAX_BODY).claims.get("iss")
    config = registry.issuers.get(issuer) if isinstance(issuer, str) else None
    if config is None:
        raise UnknownIssuer("logout token from an issuer we do not trust")
    token = await verify_logout_token(raw, config, registry.keys_for(config.issuer), now=time.time())
    return token, token.expires_at + config.leeway


def _end_in_database(token: LogoutToken, remember_until: float, now: float) -> list[str]:
    """One transaction: record the token's ``jti`` (a replay raises, nothing changed), then
    delete its Django sessions and their bindings; returns their keys."""
    bindings = SessionBinding.objects.filter(issuer=token.issuer)
    bindings = bindings.filter(sid=token.sid) if token.sid else bindings.filter(subject=token.subject)
    store = session_store_class()
    with transaction.atomic():
        SeenLogoutToken.objects.filter(expires_at__lt=now).delete()
        try:
            SeenLogoutToken.objects.create(key=replay_key(token), expires_at=remember_until)
        except IntegrityError:  # leaving the block rolls the transaction back
            raise ReplayedToken("logout token was already used", claim="jti") from None
        keys = list(bindings.values_list("session_key", flat=True))
        for key in keys:
            store(key).delete()
        bindings.filter(session_key__in=keys).delete()
    return keys


async def end_sessions(token: LogoutToken, remember_until: float) -> int:
    """Unless ``token`` was seen before (``ReplayedToken``), delete the matching Django
    sessions and close every matching socket everywhere."""
    keys = await sync_to_async(_end_in_database)(token, remember_until, time.time())
    await announce(keys, "logged_out")  # every process's session cache, before the sockets
    layer = get_channel_layer()
    groups = [session_group(key) for key in keys]
    groups.append(sid_group(token.issuer, token.sid) if token.sid
                  else subject_group(token.issuer, token.subject or ""))
    for group in groups:
        await layer.group_send(group, revoke(group, "logged_out"))
    return len(keys)


@csrf_exempt
async def backchannel_logout(request: HttpRequest) -> JsonResponse:
    received_at = time.time()
    if request.method != "POST":
        return _reply(405, "method_not_allowed")
    if len(request.body) > MAX_BODY:
        return _reply(400, "token_too_large")
    raw = request.POST.get("logout_token", "")
    try:
        token, remember_until = await _verify(raw)
        ended = await end_sessions(token, remember_until)
    except OidcError as exc:
        audit("backchannel_logout", "deny", exc.error, remote=request.META.get("REMOTE_ADDR"))
        return _reply(400, exc.error)
    audit("backchannel_logout", "allow", "logged_out", issuer=token.issuer, subject=token.subject,
          detail=f"sessions={ended}", remote=request.META.get("REMOTE_ADDR"),
          received_at=round(received_at, 6))
    return _reply(200)
