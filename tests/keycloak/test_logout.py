"""Issue 11 §4: Keycloak's real back-channel logout closes the session's sockets everywhere.

Keycloak posts its logout token to gateway 0 (the realm's back-channel logout URL); the
sockets live on both gateway processes, which share Redis.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
from websockets.asyncio.client import ClientConnection

from tests.keycloak.conftest import KeycloakStack
from tests.keycloak.flows import login, logout_at_keycloak
from tests.keycloak.helpers import close_of, recv_json, session_socket


async def _sockets(stack: KeycloakStack, client: httpx.Client) -> tuple[list[ClientConnection], str]:
    """Three sockets of one session (one on gateway 0, two on gateway 1) and its ``sid``."""
    sockets, sids = [], set()
    for gateway in (stack.gateways[0].url, stack.gateways[1].url, stack.gateways[1].url):
        ws = await session_socket(gateway, client)
        welcome = await recv_json(ws)
        assert welcome["type"] == "welcome"
        sockets.append(ws)
        sids.add(welcome["principal"]["sid"])
    assert len(sids) == 1
    return sockets, sids.pop()


async def _still_open(ws: ClientConnection) -> None:
    await ws.send("still there?")
    assert (await recv_json(ws, 3))["type"] == "error"


async def _logged_out_everywhere(stack: KeycloakStack, sockets: list[ClientConnection],
                                 bystander: ClientConnection) -> None:
    closes = await asyncio.gather(*(close_of(ws, 10) for ws in sockets))
    assert closes == [(4401, "logged_out")] * len(sockets)
    await _still_open(bystander)
    events = [json.loads(line) for line in stack.gateways[0].log().splitlines()
              if line.startswith("{") and '"backchannel_logout"' in line]
    assert events and events[-1]["outcome"] == "allow", events


async def test_end_session_logout_closes_every_socket_on_both_processes(
        kc_stack: KeycloakStack) -> None:
    alice = login(kc_stack.gateway, "alice", "alice-password")
    bob = login(kc_stack.gateway, "bob", "bob-password")
    sockets, _ = await _sockets(kc_stack, alice)
    bystander = await session_socket(kc_stack.gateways[1].url, bob)
    await recv_json(bystander)
    logout_at_keycloak(f"{kc_stack.issuer}/protocol/openid-connect/logout", alice)
    await _logged_out_everywhere(kc_stack, sockets, bystander)
    await bystander.close()


async def test_admin_api_logout_closes_every_socket_on_both_processes(
        kc_stack: KeycloakStack) -> None:
    keycloak = kc_stack.keycloak
    alice = login(kc_stack.gateway, "alice", "alice-password")
    bob = login(kc_stack.gateway, "bob", "bob-password")
    sockets, sid = await _sockets(kc_stack, alice)
    bystander = await session_socket(kc_stack.gateways[0].url, bob)
    await recv_json(bystander)
    # the administrator ends exactly this session (DELETE /sessions/{id})
    assert keycloak.admin("DELETE", f"/sessions/{sid}").status_code == 204
    await _logged_out_everywhere(kc_stack, sockets, bystander)
    await bystander.close()


async def test_admin_user_logout_closes_every_socket(kc_stack: KeycloakStack) -> None:
    keycloak = kc_stack.keycloak
    bob = login(kc_stack.gateway, "bob", "bob-password")
    alice = login(kc_stack.gateway, "alice", "alice-password")
    sockets, _ = await _sockets(kc_stack, bob)
    bystander = await session_socket(kc_stack.gateways[1].url, alice)
    await recv_json(bystander)
    # "Sign out" of a user in the admin console: POST /users/{id}/logout
    assert keycloak.admin("POST", f"/users/{keycloak.user_id('bob')}/logout").status_code == 204
    await _logged_out_everywhere(kc_stack, sockets, bystander)
    await bystander.close()


async def test_signing_out_at_the_gateway_ends_the_keycloak_session_and_returns_home(
        kc_stack: KeycloakStack) -> None:
    """Issue 12 §5: the gateway's sign-out posts RP-initiated logout to Keycloak (the ID
    token hint in a form, never a URL); Keycloak ends its session and sends the browser back
    to the gateway's home page; the next sign-in asks for the password again."""
    from tests.e2e.flows import follow
    from tests.keycloak.flows import _form

    alice = login(kc_stack.gateway, "alice", "alice-password")
    ws = await session_socket(kc_stack.gateway, alice)
    await recv_json(ws)
    home = alice.get(f"{kc_stack.gateway}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.text)
    assert token, home.text[:500]
    page = alice.post(f"{kc_stack.gateway}/oidc/logout/",
                      data={"csrfmiddlewaretoken": token.group(1)},
                      headers={"Referer": f"{kc_stack.gateway}/"})
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    assert await close_of(ws, 10) == (4401, "logged_out")
    action, fields = _form(page, 'method="post"')
    assert action.startswith(kc_stack.issuer) and "id_token_hint" in fields
    assert "id_token_hint" not in action  # the token travels in the body only
    back = follow(alice, alice.post(action, data=fields), stop_at=f"{kc_stack.gateway}/?")
    landed = back.headers.get("location", str(back.url))
    assert landed.startswith(f"{kc_stack.gateway}/"), landed
    again = follow(alice, alice.get(f"{kc_stack.gateway}/oidc/authenticate/"),
                   stop_at=f"{kc_stack.gateway}/oidc/callback/")
    assert again.status_code == 200 and 'id="kc-form-login"' in again.text  # no SSO session left
