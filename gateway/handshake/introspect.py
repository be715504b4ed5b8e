"""RFC 7662 introspection of opaque access tokens, with a bounded cache.

The HTTP call is async, on the process's pooled client, authenticated as the login client
(``gateway.issuers.tokenclient``: client_secret_basic, client_secret_post or
private_key_jwt); the response is judged by the pure
``oidc.introspection`` module; cache entries never outlive the token.
"""

from __future__ import annotations

import httpx
from django.conf import settings

from gateway.issuers import tokenclient
from gateway.issuers.registry import registry
from oidc.errors import KeysUnavailable
from oidc.introspection import IntrospectionCache, principal_from_introspection
from oidc.types import CredentialKind, Principal

cache = IntrospectionCache()


async def introspect(token: str, kind: CredentialKind, *, now: float) -> Principal:
    cached = cache.get(token, now)
    if cached is not None:
        return cached.with_credential(kind)
    issuer = registry.issuers[settings.GATEWAY.issuer]
    metadata = registry.metadata.get(issuer.issuer)
    if metadata is None or not metadata.introspection_endpoint:
        raise KeysUnavailable("introspection endpoint not known yet")
    try:
        response = await tokenclient.post(metadata.introspection_endpoint,
                                          {"token": token, "token_type_hint": "access_token"})
    except httpx.HTTPError as exc:  # unreachable or too slow: try again later, as for keys
        raise KeysUnavailable(f"introspection failed: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise KeysUnavailable(f"introspection answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except (ValueError, RecursionError):
        raise KeysUnavailable("introspection answered no JSON") from None
    principal = principal_from_introspection(answer, issuer, now=now)
    cache.put(token, principal, now)
    return principal.with_credential(kind)
