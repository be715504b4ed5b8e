"""The admin follows the provider, also for sessions no socket refreshes.

Staff and superuser follow the provider's groups at login and at each session refresh
(``gateway.login.refresh``), but sockets drive those refreshes: an administrator with no
socket open kept ``/admin/`` until the session ended (8 h), even after the provider had
removed them from the admin group or disabled them. So before an admin page is served
to staff whose session tokens have expired, the session is refreshed first:

- refreshed: staff and superuser follow the new groups, and this request sees them;
- refused by the provider (revoked, expired, user disabled): the session is logged out
  and the admin asks for a login; audited, event ``login``, reason ``refresh_failed``;
- provider unreachable, or no refresh token (some providers issue none): the flags stay
  until the session ends, as before, so the admin works while the provider is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.contrib.auth import alogout
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import async_only_middleware

from gateway.login.refresh import ProviderUnreachable, RefreshFailed, refresh_session
from gateway.login.sessions import AUTH_KEY, NoSession, aload_auth
from gateway.observe.audit import audit

logger = logging.getLogger("gateway.login")
ADMIN_PREFIX = "/admin/"  # config/urls.py

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


@async_only_middleware
def admin_follows_provider(get_response: Handler) -> Handler:
    async def middleware(request: HttpRequest) -> HttpResponse:
        if request.path.startswith(ADMIN_PREFIX):
            stale = await _stale_staff_auth(request)
            if stale is not None:
                await _refresh_or_log_out(request, stale)
        return await get_response(request)

    return middleware



async def _stale_staff_auth(request: HttpRequest) -> dict[str, Any] | None:
    """The session's tokens, if they have expired, can be refreshed, and belong to staff."""
    auth = await request.session.aget(AUTH_KEY)
    if not isinstance(auth, dict) or not auth.get("refresh_token"):
        return None
    if float(auth.get("expires_at", 0)) > time.time():
        return None
    user = await request.auser()
    return auth if user.is_staff or user.is_superuser else None


async def _refresh_or_log_out(request: HttpRequest, auth: dict[str, Any]) -> None:
    session_key = request.session.session_key
    assert session_key is not None  # it holds the tokens
    try:
        # one refresh per admin request at most, and only once the tokens have expired
        await refresh_session(session_key, not_before=time.time(), spaced=False)
    except ProviderUnreachable:
        logger.warning("the provider is unreachable: the admin keeps this session's flags")
        return
    except (RefreshFailed, NoSession) as exc:
        claims = auth.get("claims", {})
        audit("login", "deny", RefreshFailed.error, issuer=claims.get("issuer"),
              subject=claims.get("subject"), route=request.path[:200], detail=str(exc)[:200],
              remote=request.META.get("REMOTE_ADDR"))
        await alogout(request)
        return
    loaded = await aload_auth(session_key)
    if loaded is not None:  # this request's copy, so saving it keeps the new tokens
        request.session[AUTH_KEY] = dict(loaded[1])
    user = await request.auser()
    if isinstance(user, AbstractBaseUser):  # the flags the refresh just set
        await user.arefresh_from_db()
