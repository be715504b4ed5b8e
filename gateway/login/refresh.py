"""Server-side refresh of a browser session's tokens, for its long-lived sockets.

Shortly before the session's access token expires, a session-bound socket asks for a
refresh: the stored refresh token is exchanged at the provider (async httpx), a
returned ID token is verified (OIDC Core 1.0 §12.2: same iss and sub), the session is
updated, and the socket adopts the new principal (new groups, new expiry); staff and
superuser follow the new groups (``gateway.login.staff``). A refusal by the provider
closes the socket with 4401 ``refresh_failed``.

Several sockets (on several processes) of one session may ask at once; in one process
they share one refresh (``shared_refresh``), and across processes a lock per session
(Redis when configured, else in-process) lets one of them refresh, and the others adopt
the result. A session is refreshed at most once every ``oidc.lifetime.MIN_REFRESH_SPACING``
seconds, whatever the provider's token lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model

from gateway.bus.target import connect
from gateway.issuers import tokenclient
from gateway.issuers.registry import registry
from gateway.login.known import remember
from gateway.login.session_cache import announce
from gateway.login.sessions import (
    AUTH_KEY,
    NoSession,
    aload_auth,
    issued_at_of,
    principal_from_session,
    snapshot_of,
)
from gateway.login.staff import apply_admin_level
from gateway.observe.metrics import SESSION_REFRESHES
from oidc.errors import InvalidSubject, OidcError
from oidc.lifetime import refresh_allowed
from oidc.profiles import extract_roles
from oidc.types import Principal
from oidc.verify import groups_of, verify_id_token

LOCK_SECONDS = 15
_local_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
_shared: dict[str, asyncio.Future[Principal]] = {}  # this process's refresh per session


class ProviderUnreachable(OidcError):
    """The token endpoint could not be reached: sockets keep running until their expiry."""

    error = "provider_unreachable"
    status = "unavailable"


class RefreshFailed(OidcError):
    """The provider refused the refresh (revoked, expired, or the user was disabled)."""

    error = "refresh_failed"
    status = "unauthenticated"


@contextlib.asynccontextmanager
async def session_lock(session_key: str) -> AsyncIterator[None]:
    url = settings.GATEWAY.redis_url
    if url is None:
        lock = _local_locks.setdefault(session_key, asyncio.Lock())  # gone when unused
        async with lock:
            yield
        return
    client = connect(url)
    try:
        async with client.lock(f"gw:refresh:{session_key}", timeout=LOCK_SECONDS,
                               blocking_timeout=LOCK_SECONDS):
            yield
    finally:
        await client.aclose()


async def _exchange(refresh_token: str) -> dict[str, Any]:
    """RFC 6749 §6 at the token endpoint, authenticated as configured (tokenclient)."""
    metadata = registry.metadata[settings.GATEWAY.issuer]
    try:
        response = await tokenclient.post(
            metadata.token_endpoint, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    except httpx.HTTPError as exc:
        raise ProviderUnreachable(type(exc).__name__) from exc
    if response.status_code != 200:
        raise RefreshFailed(f"token endpoint answered HTTP {response.status_code}")
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise RefreshFailed("token response has no access_token")
    return body


async def _counted_exchange(refresh_token: str) -> dict[str, Any]:
    try:
        body = await _exchange(refresh_token)
    except ProviderUnreachable:
        SESSION_REFRESHES.labels("unreachable").inc()
        raise
    except OidcError:
        SESSION_REFRESHES.labels("refused").inc()
        raise
    SESSION_REFRESHES.labels("refreshed").inc()
    return body


async def _updated_auth(auth: dict[str, Any], body: dict[str, Any], now: float) -> dict[str, Any]:
    issuer = registry.issuers[settings.GATEWAY.issuer]
    old = auth["claims"]
    claims: dict[str, Any] = {"iss": old["issuer"], "sub": old["subject"], "sid": old.get("sid"),
                              "email": old.get("email"), "email_verified": old.get("email_verified")}
    groups, roles = frozenset(old.get("groups", ())), frozenset(old.get("roles", ()))
    overage = old.get("groups_overage") is True
    id_token = body.get("id_token")
    if isinstance(id_token, str):
        verified = await verify_id_token(id_token, issuer, registry.keys_for(issuer.issuer),
                                         now=now, nonce=None)
        if (verified.claims.get("iss"), verified.claims.get("sub")) != (old["issuer"], old["subject"]):
            raise InvalidSubject("refreshed ID token names another subject")
        claims = {**claims, **verified.claims}
        groups, overage = groups_of(verified.claims, issuer)
        roles = extract_roles(verified.claims, issuer.profile, issuer.client_id)
    expires_at = now + float(body.get("expires_in") or 300)
    scope = body.get("scope")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset(old.get("scopes", ()))
    return {
        **auth,
        "expires_at": expires_at,
        "issued_at": now,
        "access_token": body["access_token"],
        "refresh_token": body.get("refresh_token") or auth.get("refresh_token"),
        "id_token": id_token if isinstance(id_token, str) else auth.get("id_token"),
        "claims": snapshot_of(claims, groups=groups, roles=roles, scopes=scopes,
                              expires_at=expires_at, client_id=issuer.client_id or "",
                              groups_overage=overage),
    }


async def _follow_refresh(store: Any, claims: dict[str, Any]) -> None:
    """Staff and superuser follow the refreshed groups and roles, as at a login: an
    administrator removed from the group at the provider loses the admin at the next
    refresh, not only at the next login. The refreshed claims become the user's last seen
    ones, which the admin's preview of a grant change reads (``gateway.login.known``)."""
    user = await get_user_model().objects.filter(pk=await store.aget(SESSION_KEY)).afirst()
    if user is not None:
        await sync_to_async(apply_admin_level)(user, claims.get("groups", ()), claims.get("roles", ()))
        await sync_to_async(remember)(user, claims)


async def refresh_session(session_key: str, *, not_before: float, spaced: bool = True) -> Principal:
    """Refresh unless another socket already did (the stored expiry is past `not_before`)
    or, when ``spaced``, the session's last refresh was too recent (``oidc.lifetime``)."""
    async with session_lock(session_key):
        loaded = await aload_auth(session_key)
        if loaded is None:
            raise NoSession()
        store, auth = loaded
        current = principal_from_session(auth)
        now = time.time()
        too_soon = spaced and not refresh_allowed(issued_at_of(auth), now=now)
        if current is not None and (current.expires_at > not_before or too_soon):
            return current  # refreshed by another socket, or too soon after the last one
        if not auth.get("refresh_token"):
            raise RefreshFailed("the session holds no refresh token")
        updated = await _updated_auth(dict(auth), await _counted_exchange(auth["refresh_token"]),
                                      now)
        await store.aset(AUTH_KEY, updated)
        await store.asave()
        await announce([session_key], "refreshed")  # no process keeps the old claims
        await _follow_refresh(store, updated["claims"])
        principal = principal_from_session(updated)
        assert principal is not None
        return principal


async def shared_refresh(session_key: str, *, not_before: float) -> Principal:
    """``refresh_session`` shared by this process's sockets of one session.

    Shielded: a socket that closes meanwhile does not cut the exchange short (the provider
    may already have rotated the refresh token, which the session must keep)."""
    task = _shared.get(session_key)
    if task is None:
        task = asyncio.ensure_future(refresh_session(session_key, not_before=not_before))
        _shared[session_key] = task
        task.add_done_callback(lambda done: _forget(session_key, done))
    return await asyncio.shield(task)


def _forget(session_key: str, task: asyncio.Future[Principal]) -> None:
    if _shared.get(session_key) is task:
        del _shared[session_key]
    if not task.cancelled():
        task.exception()  # retrieved: nobody may be waiting any more
