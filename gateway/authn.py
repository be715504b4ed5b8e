"""Turn a handshake credential into a Principal. Pure async: memory and async ORM only."""

from __future__ import annotations

from oidc.errors import OidcError, TokenError
from oidc.types import CredentialKind, Principal
from oidc.verify import verify_access_token

from gateway.credentials import Credential
from gateway.providers import registry
from gateway.sessions import aload_auth, principal_from_session


class NoSession(OidcError):
    """The session cookie names no logged-in session (absent, expired or logged out)."""

    error = "no_session"
    status = "unauthenticated"


class SessionExpired(OidcError):
    """The session's access token has expired and was not refreshed."""

    error = "session_expired"
    status = "unauthenticated"


class NotAuthenticated(OidcError):
    """The handshake carried no credential at all."""

    error = "not_authenticated"
    status = "unauthenticated"


class OriginRequired(OidcError):
    """A cookie credential arrived without an Origin header (cross-site websocket hijacking)."""

    error = "origin_required"
    status = "forbidden"


async def principal_for_session(session_key: str, *, now: float) -> Principal:
    loaded = await aload_auth(session_key)
    principal = principal_from_session(loaded[1]) if loaded else None
    if principal is None:
        raise NoSession()
    if principal.expires_at <= now:
        raise SessionExpired()
    return principal


async def principal_for_token(token: str, kind: CredentialKind, *, now: float) -> Principal:
    if not token:
        raise TokenError("empty bearer token")
    return await verify_access_token(token, registry.issuers, registry.keys, now=now,
                                     credential=kind)


async def authenticate(credential: Credential, *, now: float) -> Principal:
    """Check one credential; raise an OidcError subclass on refusal."""
    if credential.kind is CredentialKind.SESSION:
        return await principal_for_session(credential.secret, now=now)
    if credential.kind in (CredentialKind.BEARER, CredentialKind.SUBPROTOCOL,
                           CredentialKind.MESSAGE):
        return await principal_for_token(credential.secret, credential.kind, now=now)
    raise NotAuthenticated(f"credential kind {credential.kind.value} is not supported")
