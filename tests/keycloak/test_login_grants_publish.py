"""Issue 11 §4: login through Keycloak's own form, grants on Keycloak claims, the publish API."""

from __future__ import annotations

import httpx
import pytest

from tests.keycloak.conftest import KeycloakStack
from tests.keycloak.flows import login
from tests.keycloak.helpers import PubSub, session_socket, welcome


@pytest.fixture(scope="module")
def grants(kc_stack: KeycloakStack) -> None:
    issuer = kc_stack.issuer
    kc_stack.add_grants([
        {"issuer": issuer, "claim": "groups", "value": "/admins", "target": "kc.alerts.*",
         "subscribe": True},
        {"issuer": issuer, "claim": "roles", "value": "operator", "target": "kc.ops",
         "subscribe": True},
        {"issuer": issuer, "claim": "groups", "value": "/engineering", "target": "kc.deploys",
         "subscribe": True},
    ])


async def test_login_through_keycloak_form_gives_cookie_socket_with_paths_and_roles(
        kc_stack: KeycloakStack) -> None:
    alice = login(kc_stack.gateway, "alice", "alice-password")
    bob = login(kc_stack.gateway, "bob", "bob-password")
    # the same session cookie works on the second process (shared session table)
    principal = await welcome(kc_stack.gateways[1].url, client=alice)
    assert principal["issuer"] == kc_stack.issuer
    assert principal["credential"] == "session"
    assert principal["groups"] == ["/admins", "/engineering"]  # full paths (group mapper)
    assert {"operator", "channel-admin", "channel-reader"} <= set(principal["roles"])
    assert principal["sid"]  # Keycloak's session id, used by back-channel logout
    assert principal["subject"] == kc_stack.keycloak.user_id("alice")
    bob_principal = await welcome(kc_stack.gateway, client=bob)
    assert bob_principal["groups"] == ["/engineering"]
    assert {"viewer", "channel-reader"} <= set(bob_principal["roles"])
    assert not {"operator", "channel-admin"} & set(bob_principal["roles"])


@pytest.mark.parametrize("channel", ["kc.alerts.disk", "kc.ops"])
async def test_grant_on_group_path_or_realm_role_admits_alice_and_refuses_bob(
        kc_stack: KeycloakStack, grants: None, channel: str) -> None:
    alice = PubSub(await session_socket(kc_stack.gateway, login(kc_stack.gateway, "alice",
                                                                "alice-password"), "/ws/events/"))
    bob = PubSub(await session_socket(kc_stack.gateways[1].url,
                                      login(kc_stack.gateway, "bob", "bob-password"),
                                      "/ws/events/"))
    try:
        assert (await alice.subscribe(channel))["type"] == "ack"
        answer = await bob.subscribe(channel)
        assert (answer["type"], answer["error"]) == ("error", "forbidden")
        assert (await bob.subscribe("kc.deploys"))["type"] == "ack"  # /engineering admits bob
    finally:
        await alice.close()
        await bob.close()


async def test_client_credentials_token_opens_bearer_socket_and_publishes(
        kc_stack: KeycloakStack, grants: None) -> None:
    token = kc_stack.keycloak.client_credentials("publisher")["access_token"]
    principal = await welcome(kc_stack.gateway, token=token)
    assert principal["credential"] == "bearer"
    assert principal["client_id"] == "publisher"
    assert "publish" in principal["scopes"]
    assert "publisher" in principal["roles"]  # the service account's realm role

    bob = PubSub(await session_socket(kc_stack.gateway,
                                      login(kc_stack.gateway, "bob", "bob-password"),
                                      "/ws/events/"))
    try:
        assert (await bob.subscribe("kc.deploys"))["type"] == "ack"
        # published through the other process; delivered over the shared Redis
        response = httpx.post(f"{kc_stack.gateways[1].url}/api/publish",
                              json={"channel": "kc.deploys", "payload": {"version": "1.2.3"}},
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 202, response.text
        message = await bob.next_message()
        assert (message["channel"], message["payload"]) == ("kc.deploys", {"version": "1.2.3"})
        assert message["mid"] == response.json()["mid"]
    finally:
        await bob.close()


def test_publish_refused_without_the_publish_scope(kc_stack: KeycloakStack) -> None:
    """The same service client without the publish client scope is refused (403)."""
    keycloak = kc_stack.keycloak
    publisher = keycloak.client_uuid("publisher")
    scope_id = next(s["id"] for s in keycloak.admin("GET", "/client-scopes").json()
                    if s["name"] == "publish")
    assert keycloak.admin("DELETE", f"/clients/{publisher}/default-client-scopes/{scope_id}"
                          ).status_code == 204
    try:
        unscoped = keycloak.client_credentials("publisher")["access_token"]
        response = httpx.post(f"{kc_stack.gateway}/api/publish",
                              json={"channel": "kc.deploys", "payload": 1},
                              headers={"Authorization": f"Bearer {unscoped}"}, timeout=10)
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"
    finally:
        assert keycloak.admin("PUT", f"/clients/{publisher}/default-client-scopes/{scope_id}"
                              ).status_code == 204
