"""OAuth 2.0 Token Introspection (RFC 7662): response → Principal, plus a cache.

The HTTP call is the caller's; this module only judges the response (§2.2).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from oidc.claims import numeric_date, validate_aud, validate_iss, validate_nbf
from oidc.config import IssuerConfig
from oidc.errors import ExpiredToken, InactiveToken, InvalidClient, MissingClaim
from oidc.types import CredentialKind, Principal
from oidc.verify import client_id_of, principal_from_claims

__all__ = ["IntrospectionCache", "principal_from_introspection", "token_digest"]


def principal_from_introspection(
    response: Mapping[str, Any],
    issuer: IssuerConfig,
    *,
    now: float,
    credential: CredentialKind = CredentialKind.BEARER,
) -> Principal:
    """Judge an introspection response (RFC 7662 §2.2) for an opaque bearer token.

    ``active`` must be exactly true; ``exp`` is required here (we must know when
    to stop trusting the token); ``iss`` and ``aud`` are checked when present.
    """
    if response.get("active") is not True:
        raise InactiveToken("introspection says the token is not active")
    if "iss" in response:
        validate_iss(response, issuer.issuer)
    exp = numeric_date(response, "exp", required=True)
    assert exp is not None
    if now >= exp:
        raise ExpiredToken("introspected token has expired", claim="exp")
    validate_nbf(response, now, issuer.leeway)
    if "aud" in response:
        validate_aud(response, issuer.audiences)
    token_type = response.get("token_type")
    if token_type is not None and (not isinstance(token_type, str)
                                   or token_type.lower() not in ("bearer", "access_token")):
        raise InactiveToken("introspected token is not an access token")
    sub = response.get("sub")
    client_id = client_id_of(response)
    subject = sub if isinstance(sub, str) and sub else client_id
    if subject is None:
        raise MissingClaim("introspection gave neither sub nor client_id", claim="sub")
    if issuer.allowed_client_ids is not None and client_id not in issuer.allowed_client_ids:
        raise InvalidClient("token was issued to a client that is not allowed", claim="client_id")
    return principal_from_claims(response, issuer, credential=credential, subject=subject,
                                 token_format="opaque")


def token_digest(token: str) -> str:
    """Cache key: sha256 of the token, so the cache never holds a usable token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class IntrospectionCache:
    """Bounded LRU of introspection results keyed by sha256(token).

    An entry expires at ``min(principal.expires_at, stored_at + ttl)``, so it
    never outlives the token. ``now`` is passed in: no clock is read here.
    """

    def __init__(self, *, ttl: float = 60.0, max_entries: int = 10000) -> None:
        if ttl <= 0 or max_entries <= 0:
            raise ValueError("ttl and max_entries must be positive")
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Principal | None:
        key = token_digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, token: str, principal: Principal, now: float) -> None:
        expires = min(principal.expires_at, now + self.ttl)
        key = token_digest(token)
        if expires <= now:
            self._entries.pop(key, None)
            return
        self._entries[key] = (expires, principal)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


PrincipalCache = IntrospectionCache
"""The same bounded cache, capped at each token's expiry, also holds verified JWTs."""
