"""Turn a handshake credential into a Principal. Async all the way: memory, async ORM, httpx."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from gateway.handshake.credentials import Credential
from gateway.handshake.introspect import introspect
from gateway.handshake.tickets import redeem_ticket
from gateway.issuers.registry import registry
from gateway.login.session_cache import sessions
from gateway.login.sessions import NoSession, SessionExpired, aload_auth, principal_from_session
from oidc.errors import MalformedToken, OidcError, TokenError
from oidc.introspection import PrincipalCache
from oidc.jws import peek
from oidc.types import CredentialKind, Principal
from oidc.verify import DEFAULT_MAX_TOKEN_BYTES, hash_jti, verify_access_token

TOKEN_KINDS = (CredentialKind.BEARER, CredentialKind.SUBPROTOCOL, CredentialKind.MESSAGE)


class NotAuthenticated(OidcError):
    """The handshake carried no credential at all."""

    error = "not_authenticated"
    status = "unauthenticated"


class OriginRequired(OidcError):
    """A cookie credential arrived without an Origin header (cross-site websocket hijacking)."""

    error = "origin_required"
    status = "forbidden"


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    session_key: str | None = None  # set when the socket belongs to a Django session


async def principal_for_session(session_key: str, *, now: float) -> Principal:
    """The session's principal: from this process's cache while it hears the logout
    broadcast (``gateway.login.session_cache``), else from the database."""
    principal = sessions.get(session_key, now)
    if principal is None:
        generation = sessions.generation
        loaded = await aload_auth(session_key)
        principal = principal_from_session(loaded[1]) if loaded else None
        if principal is not None and principal.expires_at > now:
            sessions.put(session_key, principal, now, generation)
    if principal is None:
        raise NoSession()
    if principal.expires_at <= now:
        raise SessionExpired()
    return principal


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


verified_jwts = PrincipalCache(ttl=300.0, max_entries=50_000)


def _key_still_trusted(principal: Principal) -> bool:
    keys = registry.keys.get(principal.issuer)
    return keys is not None and keys.get(principal.kid) is not None


async def principal_for_token(token: str, kind: CredentialKind, *, now: float) -> Principal:
    """A JWT access token is verified locally; an opaque one by RFC 7662 introspection.

    Verified JWTs are remembered by hash until their `exp` (at most 5 minutes), so a
    client reconnecting with the same token skips the signature check; an entry is
    ignored once its signing key has left the issuer's JWKS.
    """
    if not token:
        raise TokenError("empty bearer token")
    if not token.isascii():  # RFC 6750 b64token; also keeps it out of introspection
        raise MalformedToken("the token is not ASCII")
    if looks_like_jwt(token) or not settings.GATEWAY.introspection:
        cached = verified_jwts.get(token, now)
        if cached is not None and _key_still_trusted(cached):
            return cached.with_credential(kind)
        principal = await verify_access_token(token, registry.issuers, registry.keys, now=now,
                                              credential=kind)
        verified_jwts.put(token, principal, now)
        return principal
    return await introspect(token, kind, now=now)


def presented(credential: Credential | None) -> dict[str, str | None]:
    """Audit fields for a refused credential: its kind and, for a JWT, the ``kid`` and
    ``jti`` hash it claims (unverified, so an operator can correlate; never the token)."""
    if credential is None:
        return {}
    fields: dict[str, str | None] = {"credential": credential.kind.value}
    if credential.kind in TOKEN_KINDS and looks_like_jwt(credential.secret):
        try:
            unverified = peek(credential.secret, max_bytes=DEFAULT_MAX_TOKEN_BYTES)
        except OidcError:
            return fields
        kid = unverified.header.get("kid")
        fields["kid"] = kid[:100] if isinstance(kid, str) else None
        fields["jti_hash"] = hash_jti(unverified.claims.get("jti"))
    return fields


async def authenticate(credential: Credential, *, now: float) -> Authenticated:
    """Check one credential; raise an OidcError subclass on refusal."""
    if credential.kind is CredentialKind.SESSION:
        return Authenticated(await principal_for_session(credential.secret, now=now),
                             credential.secret)
    if credential.kind is CredentialKind.TICKET:
        redeemed = await redeem_ticket(credential.secret, now=now)
        if redeemed.principal is not None:
            return Authenticated(redeemed.principal)
        principal = await principal_for_session(redeemed.session_key or "", now=now)
        return Authenticated(principal.with_credential(CredentialKind.TICKET),
                             redeemed.session_key)
    if credential.kind in TOKEN_KINDS:
        return Authenticated(await principal_for_token(credential.secret, credential.kind,
                                                       now=now))
    raise NotAuthenticated(f"credential kind {credential.kind.value} is not supported")
