"""What a browser login leaves in the Django session, and how a websocket reads it back.

One session key, ``AUTH_KEY``, holds issuer, subject, sid, the real token
expiry, the tokens (server-side only) and a claims snapshot. The websocket
side reads it asynchronously (``aload_auth``), never with sync session access.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from types import MappingProxyType
from typing import Any

from django.conf import settings

from oidc.errors import OidcError
from oidc.types import ClaimsSnapshot, CredentialKind, Principal

AUTH_KEY = "gateway.auth"


class NoSession(OidcError):
    """The session cookie names no logged-in session (absent, expired or logged out)."""

    error = "no_session"
    status = "unauthenticated"


class SessionExpired(OidcError):
    """The session's access token has expired and was not refreshed."""

    error = "session_expired"
    status = "unauthenticated"


def session_store_class() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def snapshot_of(claims: Mapping[str, Any], *, groups: frozenset[str], roles: frozenset[str],
                scopes: frozenset[str], expires_at: float, client_id: str,
                groups_overage: bool = False) -> ClaimsSnapshot:
    """The claims later work needs, as plain JSON-safe values."""
    return ClaimsSnapshot(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        sid=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
        groups=sorted(groups),
        roles=sorted(roles),
        scopes=sorted(scopes),
        expires_at=expires_at,
        client_id=client_id,
        email=claims.get("email") if isinstance(claims.get("email"), str) else None,
        email_verified=claims.get("email_verified") is True,
        groups_overage=groups_overage,
    )


def issued_at_of(auth: Mapping[str, Any]) -> float | None:
    """When the session's tokens were issued: its login or its last refresh."""
    value = auth.get("issued_at")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def principal_from_session(auth: Mapping[str, Any]) -> Principal | None:
    """Rebuild the principal from the stored snapshot; None if the record is unusable."""
    snap = auth.get("claims")
    if not isinstance(snap, dict):
        return None
    try:
        return Principal(
            issuer=snap["issuer"],
            subject=snap["subject"],
            client_id=snap.get("client_id"),
            groups=frozenset(snap.get("groups", ())),
            roles=frozenset(snap.get("roles", ())),
            scopes=frozenset(snap.get("scopes", ())),
            claims=MappingProxyType(dict(snap)),
            expires_at=float(auth["expires_at"]),
            sid=snap.get("sid"),
            credential=CredentialKind.SESSION,
            groups_overage=snap.get("groups_overage") is True,
            issued_at=issued_at_of(auth),
        )
    except (KeyError, TypeError, ValueError):
        return None


async def aload_auth(session_key: str) -> tuple[Any, Mapping[str, Any]] | None:
    """Load a session without blocking the loop; None unless it holds a logged-in user."""
    store = session_store_class()(session_key)
    if await store.aget("_auth_user_id") is None:
        return None
    auth = await store.aget(AUTH_KEY)
    if not isinstance(auth, dict):
        return None
    return store, auth
