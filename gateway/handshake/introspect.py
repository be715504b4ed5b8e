"""RFC 7662 introspection of opaque access tokens, with a bounded cache.

The HTTP call is async (httpx); the response is judged by the pure
``oidc.introspection`` module; cache entries never outlive the token.
"""

from __future__ import annotations

import httpx
from django.conf import settings

from gateway.issuers.registry import FETCH_TIMEOUT, registry
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
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            response = await client.post(
                metadata.introspection_endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=(settings.GATEWAY.client_id, settings.GATEWAY.client_secret),
                headers={"Accept": "application/json"},
            )
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
