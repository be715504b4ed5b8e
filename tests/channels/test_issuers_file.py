"""GATEWAY_ISSUERS_FILE: several issuers federated at once, each with its own profile."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from gateway.issuers.config import configured_issuers
from oidc.errors import InvalidAudience, UnknownIssuer, UnknownKey
from oidc.jwks import JwksCache
from oidc.types import CredentialKind
from oidc.verify import verify_access_token
from tests.unit.factories import KEY1, KEY2, encode, jwks_of

KEYCLOAK = "https://sso.example.com/realms/acme"
TOML = f'''
[[issuer]]
issuer = "{KEYCLOAK}"
audiences = ["account", "ws-gateway"]
profile = "keycloak"
client_id = "ws-gateway"
algorithms = ["RS256"]
'''


def _with_file(tmp_path: Path, text: str) -> override_settings:
    path = tmp_path / "issuers.toml"
    path.write_text(text)
    return override_settings(GATEWAY=dataclasses.replace(settings.GATEWAY, issuers_file=path))


async def test_two_issuers_each_with_their_own_keys_and_profile(tmp_path: Path) -> None:
    with _with_file(tmp_path, TOML):
        issuers = configured_issuers()
    assert set(issuers) == {settings.GATEWAY.issuer, KEYCLOAK}
    keys = {settings.GATEWAY.issuer: JwksCache.from_keys(jwks_of(KEY1)),
            KEYCLOAK: JwksCache.from_keys(jwks_of(KEY2))}
    now = time.time()
    keycloak_token = encode({"alg": "RS256", "typ": "JWT", "kid": "k2"}, {
        "iss": KEYCLOAK, "sub": "f:1:alice", "aud": ["account", "ws-gateway"], "azp": "ws-gateway",
        "typ": "Bearer", "exp": now + 300, "iat": now, "scope": "openid ws",
        "groups": ["/engineering"], "realm_access": {"roles": ["ops"]},
        "resource_access": {"ws-gateway": {"roles": ["publisher"]}}}, key=KEY2)
    principal = await verify_access_token(keycloak_token, issuers, keys, now=now,
                                          credential=CredentialKind.BEARER)
    assert principal.groups == {"/engineering"}
    assert principal.roles == {"ops", "publisher"}
    assert principal.scopes == {"openid", "ws"}

    # a token signed by the Keycloak key but claiming the other issuer is refused
    forged = encode({"alg": "RS256", "typ": "at+jwt", "kid": "k2"}, {
        "iss": settings.GATEWAY.issuer, "sub": "x", "aud": "urn:wsgateway:api",
        "exp": now + 300, "iat": now}, key=KEY2)
    with pytest.raises(UnknownKey) as refused:
        await verify_access_token(forged, issuers, keys, now=now, credential=CredentialKind.BEARER)
    assert refused.value.error == "unknown_kid"

    other = encode({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}, {
        "iss": "https://unknown.example", "sub": "x", "aud": "a", "exp": now + 300, "iat": now})
    with pytest.raises(UnknownIssuer):
        await verify_access_token(other, issuers, keys, now=now, credential=CredentialKind.BEARER)
    wrong_aud = encode({"alg": "RS256", "typ": "JWT", "kid": "k2"}, {
        "iss": KEYCLOAK, "sub": "y", "aud": "urn:wsgateway:api", "typ": "Bearer",
        "exp": now + 300, "iat": now}, key=KEY2)
    with pytest.raises(InvalidAudience):
        await verify_access_token(wrong_aud, issuers, keys, now=now, credential=CredentialKind.BEARER)


@pytest.mark.parametrize(("text", "fix"), [
    ('[[issuer]]\nissuer = "https://a.example"\naudiences = ["x"]\nprofil = "keycloak"\n',
     "unknown keys"),
    ('[[issuer]]\nissuer = "https://a.example"\n', "needs 'audiences'"),
    ('[[issuer]]\nissuer = "https://a.example"\naudiences = ["x"]\nalgorithms = ["HS256"]\n',
     "asymmetric"),
    (f'[[issuer]]\nissuer = "{KEYCLOAK}"\naudiences = ["x"]\n'
     f'[[issuer]]\nissuer = "{KEYCLOAK}"\naudiences = ["y"]\n', "listed twice"),
])
def test_bad_issuers_file_names_the_fix(tmp_path: Path, text: str, fix: str) -> None:
    with _with_file(tmp_path, text), pytest.raises(ImproperlyConfigured, match=fix):
        configured_issuers()


AUTH0 = "https://acme.eu.auth0.com/"


async def test_claim_paths_can_be_overridden_per_issuer(tmp_path: Path) -> None:
    """An Auth0 tenant keeps groups in a namespaced (URL) claim; the file says where."""
    text = (f'[[issuer]]\nissuer = "{AUTH0}"\naudiences = ["https://api.acme.example"]\n'
            f'profile = "auth0"\ngroups_claims = ["https://acme.example/groups"]\n')
    with _with_file(tmp_path, text):
        issuers = configured_issuers()
    assert issuers[AUTH0].profile.groups_claims == ("https://acme.example/groups",)
    now = time.time()
    token = encode({"alg": "RS256", "typ": "JWT", "kid": "k2"}, {
        "iss": AUTH0, "sub": "auth0|42", "aud": ["https://api.acme.example", f"{AUTH0}userinfo"],
        "azp": "spa-client", "exp": now + 300, "iat": now, "scope": "openid ws",
        "permissions": ["publish:deploys"], "https://acme.example/groups": ["engineering"]},
        key=KEY2)
    principal = await verify_access_token(token, issuers, {AUTH0: JwksCache.from_keys(jwks_of(KEY2))},
                                          now=now, credential=CredentialKind.BEARER)
    assert principal.groups == {"engineering"}
    assert principal.roles == {"publish:deploys"}
    assert principal.scopes == {"openid", "ws"} and principal.client_id == "spa-client"


def test_introspection_is_not_a_per_issuer_key(tmp_path: Path) -> None:
    """Opaque tokens carry no iss; introspection is the login issuer's (docs/clients.md)."""
    text = '[[issuer]]\nissuer = "https://a.example"\naudiences = ["x"]\nintrospection = true\n'
    with _with_file(tmp_path, text), pytest.raises(ImproperlyConfigured, match="unknown keys"):
        configured_issuers()


async def test_the_registry_calls_the_provider_at_its_internal_url(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses as dc

    from gateway.issuers import registry as registry_module
    from oidc.config import IssuerConfig

    public = "https://login.example.com/realms/gateway"
    fetched: list[str] = []

    async def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        if url.endswith("/.well-known/openid-configuration"):
            return {"issuer": public, "authorization_endpoint": f"{public}/auth",
                    "token_endpoint": f"{public}/token", "jwks_uri": f"{public}/certs"}
        return {"keys": []}

    monkeypatch.setattr(registry_module, "fetch_json", fetch)
    monkeypatch.setattr(registry_module, "fetch_jwks", fetch)
    config = IssuerConfig(issuer=public, audiences=frozenset({"api"}), internal_url="http://keycloak:8080")
    reg = registry_module.Registry({public: dc.replace(config)})
    with pytest.raises(Exception):  # noqa: B017, PT011 - an empty key set: no usable keys
        await reg.load(public)
    assert fetched[0] == "http://keycloak:8080/realms/gateway/.well-known/openid-configuration"
    assert fetched[1] == "http://keycloak:8080/realms/gateway/certs"
    assert reg.metadata[public].authorization_endpoint == f"{public}/auth"


def test_end_session_method_belongs_to_the_login_issuer(tmp_path: Path) -> None:
    """Browsers sign in and out at GATEWAY_OIDC_ISSUER only; the file's issuers sign tokens."""
    text = '[[issuer]]\nissuer = "https://a.example"\naudiences = ["x"]\nend_session_method = "POST"\n'
    with _with_file(tmp_path, text), pytest.raises(ImproperlyConfigured,
                                                   match="GATEWAY_OIDC_END_SESSION_METHOD"):
        configured_issuers()
