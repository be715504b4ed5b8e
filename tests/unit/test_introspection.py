"""RFC 7662 responses and the introspection cache."""

from __future__ import annotations

from typing import Any

import pytest

from oidc import errors
from oidc.config import IssuerConfig
from oidc.introspection import IntrospectionCache, principal_from_introspection
from oidc.profiles import KEYCLOAK
from oidc.types import CredentialKind

from .factories import AUDIENCE, ISSUER, NOW, make_config


def response(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"active": True, "iss": ISSUER, "sub": "user-1", "client_id": "spa",
                            "exp": NOW + 300, "aud": AUDIENCE, "scope": "ws.read",
                            "token_type": "Bearer"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_active_response_gives_opaque_principal(config: IssuerConfig) -> None:
    p = principal_from_introspection(response(groups=["g"]), config, now=NOW)
    assert (p.subject, p.client_id, p.token_format) == ("user-1", "spa", "opaque")
    assert p.scopes == {"ws.read"} and p.groups == {"g"} and p.expires_at == NOW + 300
    assert p.credential is CredentialKind.BEARER


def test_client_credentials_token_uses_client_id_as_subject(config: IssuerConfig) -> None:
    p = principal_from_introspection(response(sub=None), config, now=NOW)
    assert p.subject == "spa"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (response(active=False), errors.InactiveToken),
        (response(active="true"), errors.InactiveToken),
        (response(active=None), errors.InactiveToken),
        (response(exp=NOW - 1), errors.ExpiredToken),
        (response(exp=None), errors.MissingClaim),
        (response(iss="https://evil.example.com"), errors.InvalidIssuer),
        (response(aud="other"), errors.InvalidAudience),
        (response(sub=None, client_id=None), errors.MissingClaim),
        (response(token_type="refresh_token"), errors.InactiveToken),
    ],
    ids=["inactive", "active-string", "active-missing", "expired", "no-exp", "wrong-iss",
         "wrong-aud", "no-sub-no-client", "refresh-token"],
)
def test_refusals(config: IssuerConfig, data: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        principal_from_introspection(data, config, now=NOW)


def test_allowed_client_ids(config: IssuerConfig) -> None:
    strict = make_config(allowed_client_ids=frozenset({"other"}))
    with pytest.raises(errors.InvalidClient):
        principal_from_introspection(response(), strict, now=NOW)


def test_profile_applies_to_introspection() -> None:
    config = make_config(profile=KEYCLOAK)
    p = principal_from_introspection(response(realm_access={"roles": ["op"]}), config, now=NOW)
    assert p.roles == {"op"}


def test_cache_hit_and_ttl(config: IssuerConfig) -> None:
    cache = IntrospectionCache(ttl=60)
    p = principal_from_introspection(response(), config, now=NOW)
    cache.put("opaque-1", p, NOW)
    assert cache.get("opaque-1", NOW + 59) is p
    assert cache.get("opaque-2", NOW) is None
    assert cache.get("opaque-1", NOW + 60) is None


def test_cache_entry_never_outlives_token(config: IssuerConfig) -> None:
    cache = IntrospectionCache(ttl=600)
    p = principal_from_introspection(response(exp=NOW + 30), config, now=NOW)
    cache.put("opaque-1", p, NOW)
    assert cache.get("opaque-1", NOW + 29) is p
    assert cache.get("opaque-1", NOW + 30) is None


def test_cache_is_bounded_lru(config: IssuerConfig) -> None:
    cache = IntrospectionCache(ttl=60, max_entries=2)
    p = principal_from_introspection(response(), config, now=NOW)
    cache.put("a", p, NOW)
    cache.put("b", p, NOW)
    assert cache.get("a", NOW) is p  # a is now most recent
    cache.put("c", p, NOW)
    assert len(cache) == 2
    assert cache.get("b", NOW) is None and cache.get("a", NOW) is p


def test_cache_keys_are_digests(config: IssuerConfig) -> None:
    cache = IntrospectionCache()
    cache.put("secret-token", principal_from_introspection(response(), config, now=NOW), NOW)
    assert "secret-token" not in repr(cache._entries)
