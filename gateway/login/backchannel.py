"""OpenID Connect Back-Channel Logout 1.0 receiver: ``POST /oidc/backchannel-logout/``.

A valid logout token deletes every Django session of its `sid` (or of its subject
when there is no `sid`) and closes their sockets, and every socket carrying that
`sid` or subject, on every gateway process, with 4401. An invalid token gets
HTTP 400 and changes nothing (§2.8).

The database work before the sockets are told is two hops to Django's database thread,
one transaction each: the replay check, then the sessions and their bindings. Each hop
and each commit waits for a thread and (on SQLite) the disk, so on a loaded machine six
of them put tens of milliseconds before the first socket closed (``bench/logout.py
--trace``).
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
from oidc.errors import OidcError, UnknownIssuer
from oidc.jws import peek
from oidc.logout import LogoutToken, accept_logout_token

MAX_BODY = 32 * 1024


def _remember(key: str, expires_at: float, now: float) -> bool:
    """Forget expired keys and record this one, in one transaction; False if it is there."""
    try:
        with transaction.atomic():
            SeenLogoutToken.objects.filter(expires_at__lt=now).delete()
            SeenLogoutToken.objects.create(key=key, expires_at=expires_at)
    except IntegrityError:
        return False
    return True


class DatabaseReplayStore:
    """``oidc.logout.ReplayStore`` on the shared database: a unique row per jti."""

    async def remember(self, key: str, expires_at: float) -> bool:
        return await sync_to_async(_remember)(key, expires_at, time.time())


def _reply(status: int, error: str | None = None) -> JsonResponse:
    body = {"error": "invalid_request", "error_description": error} if error else {}
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


async def _verify(raw: str) -> LogoutToken:
    issuer = peek(raw, max_bytes=MAX_BODY).claims.get("iss")
    config = registry.issuers.get(issuer) if isinstance(issuer, str) else None
    if config is None:
        raise UnknownIssuer("logout token from an issuer we do not trust")
    return await accept_logout_token(raw, config, registry.keys_for(config.issuer),
                                     DatabaseReplayStore(), now=time.time())


def _delete_sessions(token: LogoutToken) -> list[str]:
    """Delete the token's Django sessions and their bindings in one transaction; their keys."""
    bindings = SessionBinding.objects.filter(issuer=token.issuer)
    bindings = bindings.filter(sid=token.sid) if token.sid else bindings.filter(subject=token.subject)
    store = session_store_class()
    with transaction.atomic():
        keys = list(bindings.values_list("session_key", flat=True))
        for key in keys:
            store(key).delete()
        bindings.filter(session_key__in=keys).delete()
    return keys


async def end_sessions(token: LogoutToken) -> int:
    """Delete the matching Django sessions and close every matching socket everywhere."""
    keys = await sync_to_async(_delete_sessions)(token)
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
        token = await _verify(raw)
    except OidcError as exc:
        audit("backchannel_logout", "deny", exc.error, remote=request.META.get("REMOTE_ADDR"))
        return _reply(400, exc.error)
    ended = await end_sessions(token)
    audit("backchannel_logout", "allow", "logged_out", issuer=token.issuer, subject=token.subject,
          detail=f"sessions={ended}", remote=request.META.get("REMOTE_ADDR"),
          received_at=round(received_at, 6))
    return _reply(200)
