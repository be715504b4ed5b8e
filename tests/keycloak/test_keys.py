"""Issue 11 §4: signing-key rotation through the admin API, and RFC 9068 ``at+jwt`` tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devidp.stack import GatewayProcess, free_port, start_gateway
from tests.keycloak.conftest import KeycloakStack, keycloak_gateway_env
from tests.keycloak.helpers import jose_header, refused, welcome

KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


def _kids(stack: KeycloakStack) -> set[str]:
    keys = httpx.get(f"{stack.issuer}/protocol/openid-connect/certs", timeout=10).json()["keys"]
    return {key["kid"] for key in keys if key.get("use") == "sig"}


def _rsa_providers(stack: KeycloakStack) -> list[dict[str, Any]]:
    components = stack.keycloak.admin("GET", "/components", params={"type": KEY_PROVIDER}).json()
    return [c for c in components if c["providerId"] == "rsa-generated"
            and c["config"].get("enabled", ["true"]) == ["true"]]


async def test_key_rotation_without_restart(kc_stack: KeycloakStack) -> None:
    keycloak = kc_stack.keycloak
    old_token = keycloak.client_credentials("publisher")["access_token"]
    old_kid = jose_header(old_token)["kid"]
    for gateway in kc_stack.gateways:  # both processes know the old key
        assert (await welcome(gateway.url, token=old_token))["client_id"] == "publisher"
    old_providers = _rsa_providers(kc_stack)
    realm_id = keycloak.admin("GET", "").json()["id"]

    # 1. a new RSA key provider with a higher priority becomes the active signing key
    created = keycloak.admin("POST", "/components", json={
        "name": "rsa-rotated", "providerId": "rsa-generated", "providerType": KEY_PROVIDER,
        "parentId": realm_id,
        "config": {"priority": ["1000"], "enabled": ["true"], "active": ["true"],
                   "keySize": ["2048"], "algorithm": ["RS256"]}})
    assert created.status_code == 201, created.text
    # 2. the old provider is disabled: its key leaves the JWKS
    for provider in old_providers:
        provider["config"]["enabled"] = ["false"]
        assert keycloak.admin("PUT", f"/components/{provider['id']}", json=provider
                              ).status_code == 204
    kids = _kids(kc_stack)
    assert old_kid not in kids

    new_token = keycloak.client_credentials("publisher")["access_token"]
    assert jose_header(new_token)["kid"] in kids - {old_kid}
    for gateway in kc_stack.gateways:  # no restart: an unknown kid refetches the JWKS
        assert (await welcome(gateway.url, token=new_token))["client_id"] == "publisher"
        code, reason = await refused(gateway.url, old_token)
        assert (code, reason) == (4401, "unknown_kid")


@pytest.fixture(scope="module")
def generic_gateway(kc_stack: KeycloakStack) -> Iterator[GatewayProcess]:
    """A third process on the same realm with GATEWAY_OIDC_PROFILE=generic (RFC 9068)."""
    port = free_port()
    env = keycloak_gateway_env(kc_stack.keycloak, port, kc_stack.tmp / "gateway.sqlite3",
                               [f"http://127.0.0.1:{port}"], GATEWAY_OIDC_PROFILE="generic")
    gateway = start_gateway(port, env, kc_stack.tmp / "gateway-generic.log")
    try:
        yield gateway
    finally:
        gateway.stop()


async def test_rfc9068_access_tokens_accepted_with_generic_and_keycloak_profiles(
        kc_stack: KeycloakStack, generic_gateway: GatewayProcess) -> None:
    keycloak = kc_stack.keycloak
    at_jwt = keycloak.client_credentials("publisher-rfc9068")["access_token"]
    plain = keycloak.client_credentials("publisher")["access_token"]
    assert jose_header(at_jwt)["typ"] == "at+jwt"
    assert jose_header(plain)["typ"] == "JWT"

    keycloak_profile = await welcome(kc_stack.gateway, token=at_jwt)
    assert keycloak_profile["client_id"] == "publisher-rfc9068"
    assert "publisher" in keycloak_profile["roles"]  # realm_access.roles
    generic = await welcome(generic_gateway.url, token=at_jwt)
    assert generic["client_id"] == "publisher-rfc9068"
    assert "publish" in generic["scopes"]
    assert generic["roles"] == []  # the generic profile reads "roles", which Keycloak omits
    # the generic profile insists on at+jwt (RFC 9068 §2.1): Keycloak's default typ JWT fails
    assert (await refused(generic_gateway.url, plain))[0] == 4401
