"""Issue 19: login through Keycloak's form via the proxy, grants and publish across replicas,
and Keycloak's back-channel logout through the proxy closing the session on both replicas."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.compose.sockets import audit_events, close_all, place_on_both, still_open
from tests.compose.stack import GATEWAY, ISSUER, Stack
from tests.keycloak.flows import login, logout_at_keycloak
from tests.keycloak.helpers import PubSub, close_of

GRANTS = [
    {"issuer": ISSUER, "claim": "groups", "value": "/admins", "target": "demo.alerts.*",
     "subscribe": True},
    {"issuer": ISSUER, "claim": "groups", "value": "/engineering", "target": "demo.deploys",
     "subscribe": True},
]
# The admin's own save (gateway/admin.py), as an administrator adds a grant in the console.
ADD_GRANTS = """
import json, sys
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from gateway.models import Grant
user, _ = get_user_model().objects.get_or_create(
    username='compose-admin', defaults={'is_staff': True, 'is_superuser': True})
request = RequestFactory().post('/admin/gateway/grant/'); request.user = user
for g in json.loads(sys.argv[-1]):
    if not Grant.objects.filter(**g).exists():
        admin.site._registry[Grant].save_model(request, Grant(**g), None, False)
"""


@pytest.fixture(scope="module")
def grants(stack: Stack) -> None:
    stack.django(ADD_GRANTS, json.dumps(GRANTS))


async def test_login_through_keycloak_form_via_proxy_gives_sockets_on_both_replicas(
        stack: Stack) -> None:
    alice = login(GATEWAY, "alice", "alice-password")
    placed = await place_on_both(stack, alice)
    try:
        principals = {json.dumps(p.principal, sort_keys=True) for p in placed}
        assert len(principals) == 1  # one session, whichever replica answers
        principal = placed[0].principal
        assert principal["issuer"] == ISSUER  # the public issuer, though fetched internally
        assert principal["credential"] == "session"
        assert principal["groups"] == ["/admins", "/engineering"]
        assert principal["subject"] == stack.user_id("alice")
        assert {p.replica for p in placed} == {"gateway-1", "gateway-2"}
    finally:
        await close_all(placed)


async def test_demo_grants_and_a_service_publish_reach_subscribers_on_both_replicas(
        stack: Stack, grants: None) -> None:
    bob = login(GATEWAY, "bob", "bob-password")
    placed = await place_on_both(stack, bob, path="/ws/events/")
    subscribers = [PubSub(p.ws) for p in placed]
    try:
        for subscriber in subscribers:
            assert (await subscriber.subscribe("demo.deploys"))["type"] == "ack"
        refused = await subscribers[0].subscribe("demo.alerts.disk")  # /admins only
        assert (refused["type"], refused["error"]) == ("error", "forbidden")
        token = stack.publisher_token()
        response = httpx.post(f"{GATEWAY}/api/publish",
                              json={"channel": "demo.deploys", "payload": {"version": "2.0"}},
                              headers={"Authorization": f"Bearer {token}"}, timeout=20)
        assert response.status_code == 202, response.text
        received = await asyncio.gather(*(s.next_message(10) for s in subscribers))
        for message in received:
            assert (message["channel"], message["payload"]) == ("demo.deploys", {"version": "2.0"})
            assert message["mid"] == response.json()["mid"]
        assert {p.replica for p in placed} == {"gateway-1", "gateway-2"}
    finally:
        await close_all(placed)


async def test_keycloak_logout_reaches_the_gateways_through_the_proxy_and_closes_both_replicas(
        stack: Stack) -> None:
    alice = login(GATEWAY, "alice", "alice-password")
    bob = login(GATEWAY, "bob", "bob-password")
    placed = await place_on_both(stack, alice)
    bystanders = await place_on_both(stack, bob)
    sids = {p.principal["sid"] for p in placed}
    assert len(sids) == 1
    before = len(audit_events(stack, "backchannel_logout"))
    try:
        logout_at_keycloak(f"{ISSUER}/protocol/openid-connect/logout", alice)
        closes = await asyncio.gather(*(close_of(p.ws, 20) for p in placed))
        assert closes == [(4401, "logged_out")] * len(placed)
        for bystander in bystanders:  # bob's session, on both replicas, is untouched
            await still_open(bystander.ws)
        events = audit_events(stack, "backchannel_logout")[before:]
        assert [e["outcome"] for e in events] == ["allow"], events
    finally:
        await close_all(placed + bystanders)
