"""Provider metadata (OIDC Discovery 1.0 §3-4, RFC 8414)."""

from __future__ import annotations

from typing import Any

import pytest

from oidc.discovery import discovery_url, parse_metadata
from oidc.errors import DiscoveryError

ISSUER = "https://idp.example.com/realms/main"


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/certs",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "end_session_endpoint": f"{ISSUER}/logout",
        "backchannel_logout_supported": True,
        "authorization_response_iss_parameter_supported": True,
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def test_parse() -> None:
    m = parse_metadata(document(), ISSUER)
    assert m.jwks_uri == f"{ISSUER}/certs" and m.userinfo_endpoint == f"{ISSUER}/userinfo"
    assert m.iss_parameter_supported and m.backchannel_logout_supported
    assert m.id_token_signing_alg_values_supported == ("RS256", "ES256")
    assert m.introspection_endpoint is None


@pytest.mark.parametrize("issuer", [ISSUER + "/", "https://evil.example.com", None])
def test_issuer_mismatch(issuer: str | None) -> None:
    with pytest.raises(DiscoveryError, match="issuer"):
        parse_metadata(document(issuer=issuer), ISSUER)


@pytest.mark.parametrize("field", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_required_field_missing(field: str) -> None:
    with pytest.raises(DiscoveryError, match=field):
        parse_metadata(document(**{field: None}), ISSUER)


@pytest.mark.parametrize(
    "url", ["http://idp.example.com/certs", "ftp://idp.example.com/certs", "/certs", 42,
            "https://idp.example.com/certs#frag"],
)
def test_insecure_urls_refused(url: str | int) -> None:
    with pytest.raises(DiscoveryError, match="jwks_uri"):
        parse_metadata(document(jwks_uri=url), ISSUER)


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1:9000", "[::1]:9000"])
def test_loopback_http_allowed(host: str) -> None:
    issuer = f"http://{host}/oidc"
    doc = document(issuer=issuer, authorization_endpoint=f"{issuer}/auth",
                   token_endpoint=f"{issuer}/token", jwks_uri=f"{issuer}/jwks",
                   userinfo_endpoint=None, end_session_endpoint=None)
    assert parse_metadata(doc, issuer).jwks_uri == f"{issuer}/jwks"


def test_bad_flag_and_algs() -> None:
    with pytest.raises(DiscoveryError, match="backchannel_logout_supported"):
        parse_metadata(document(backchannel_logout_supported="yes"), ISSUER)
    with pytest.raises(DiscoveryError, match="id_token_signing"):
        parse_metadata(document(id_token_signing_alg_values_supported="RS256"), ISSUER)


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        ("https://idp.example.com", "https://idp.example.com/.well-known/openid-configuration"),
        ("https://idp.example.com/", "https://idp.example.com/.well-known/openid-configuration"),
        ("https://idp.example.com/realms/a",
         "https://idp.example.com/realms/a/.well-known/openid-configuration"),
    ],
)
def test_discovery_url(issuer: str, url: str) -> None:
    assert discovery_url(issuer) == url


INTERNAL = "http://keycloak:8080"


def test_server_calls_move_to_the_internal_url_and_the_browser_keeps_the_public_ones() -> None:
    from oidc.discovery import for_server_calls

    m = for_server_calls(parse_metadata(document(), ISSUER), INTERNAL)
    assert m.token_endpoint == "http://keycloak:8080/realms/main/token"
    assert m.jwks_uri == "http://keycloak:8080/realms/main/certs"
    assert m.userinfo_endpoint == "http://keycloak:8080/realms/main/userinfo"
    assert m.authorization_endpoint == f"{ISSUER}/auth"  # the browser goes there
    assert m.end_session_endpoint == f"{ISSUER}/logout"
    assert m.issuer == ISSUER  # iss is still checked against the public issuer


def test_endpoints_on_another_origin_and_no_internal_url_are_left_alone() -> None:
    from oidc.discovery import for_server_calls, internal_url

    other = "https://keys.example.net/certs"
    assert internal_url(other, ISSUER, INTERNAL) == other
    m = parse_metadata(document(), ISSUER)
    assert for_server_calls(m, None) is m
    assert internal_url(discovery_url(ISSUER), ISSUER, INTERNAL) == \
        "http://keycloak:8080/realms/main/.well-known/openid-configuration"


def test_backchannel_endpoints_keycloak_puts_on_the_internal_url_are_accepted() -> None:
    """Issue 19, found by compose up: with KC_HOSTNAME_BACKCHANNEL_DYNAMIC Keycloak answers
    discovery on http://keycloak:8080 with its back-channel endpoints on that origin; the
    gateway refused the metadata and never became ready."""
    from oidc.discovery import for_server_calls

    dynamic = document(token_endpoint=f"{INTERNAL}/realms/main/token",
                       jwks_uri=f"{INTERNAL}/realms/main/certs",
                       introspection_endpoint=f"{INTERNAL}/realms/main/introspect")
    m = for_server_calls(parse_metadata(dynamic, ISSUER, INTERNAL), INTERNAL)
    assert (m.token_endpoint, m.jwks_uri) == (f"{INTERNAL}/realms/main/token",
                                              f"{INTERNAL}/realms/main/certs")
    assert m.authorization_endpoint == f"{ISSUER}/auth"
    with pytest.raises(DiscoveryError, match="token_endpoint"):
        parse_metadata(dynamic, ISSUER)  # plain http off loopback, with no internal URL configured


@pytest.mark.parametrize("url", ["http://keycloak:9090/realms/main/token",
                                 "http://evil:8080/realms/main/token",
                                 "https://keycloak:8080/realms/main/token#x"])
def test_only_the_internal_origin_itself_is_trusted_over_http(url: str) -> None:
    with pytest.raises(DiscoveryError, match="token_endpoint"):
        parse_metadata(document(token_endpoint=url), ISSUER, INTERNAL)
