"""Issue 11 §4: Keycloak's real back-channel logout closes the session's sockets everywhere.

Keycloak posts its logout token to gateway 0 (the realm's back-channel logout URL); the
sockets live on both gateway processes, which share Redis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from devidp.stack import free_port, start_gateway
from tests.e2e.flows import follow, sign_out
from tests.keycloak.conftest import GATEWAY_READY_TIMEOUT, KeycloakStack, keycloak_gateway_env
from tests.keycloak.flows import _form, login, logout_at_keycloak
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


def _keycloak_asks_for_password(client: httpx.Client, stack: KeycloakStack, gateway: str) -> bool:
    """Whether Keycloak, asked for a code without ``prompt`` in this browser, shows its login
    form (no SSO session left) rather than signing the user in at once."""
    callback = f"{gateway}/oidc/callback/"
    page = client.get(stack.keycloak.endpoint("auth"), params={
        "client_id": "gateway", "response_type": "code", "redirect_uri": callback,
        "scope": "openid", "state": "probe", "code_challenge": "A" * 43,
        "code_challenge_method": "S256"})
    page = follow(client, page, stop_at=callback)
    return not page.is_redirect and 'id="kc-form-login"' in page.text


def _landed_home(client: httpx.Client, gateway: str, back: httpx.Response, state: str) -> None:
    """Keycloak sent the browser to the gateway's home page with our ``state``; the page
    says the sign-out was verified."""
    assert back.is_redirect, back.text[:800]
    landed = urlsplit(urljoin(str(back.url), back.headers["location"]))
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == f"{gateway}/"
    assert parse_qs(landed.query)["state"] == [state]
    home = client.get(landed.geturl())
    assert home.status_code == 200 and 'data-notice="signed_out"' in home.text, home.text[:500]


async def test_sign_out_by_get_confirms_on_keycloaks_page_and_ends_its_session(
        kc_stack: KeycloakStack) -> None:
    """The default method: no ID token anywhere; Keycloak asks "Do you want to log out?",
    the user confirms, Keycloak ends its session and sends the browser home with ``state``."""
    gateway = kc_stack.gateway
    alice = login(gateway, "alice", "alice-password")
    ws = await session_socket(gateway, alice)
    await recv_json(ws)
    out = sign_out(alice, gateway)
    assert out.status_code == 303, out.text[:500]
    assert await close_of(ws, 10) == (4401, "logged_out")
    leave = urlsplit(out.headers["location"])
    assert leave.geturl().startswith(kc_stack.issuer)
    query = parse_qs(leave.query)
    assert set(query) == {"client_id", "post_logout_redirect_uri", "state"}  # no token in the URL
    page = alice.get(out.headers["location"])
    assert page.status_code == 200, page.text[:500]
    action, hidden = _form(page, "logout-confirm")  # "Do you want to log out?"
    back = alice.post(action, data=hidden | {"confirmLogout": "Logout"})  # the "Logout" button
    _landed_home(alice, gateway, back, query["state"][0])
    assert _keycloak_asks_for_password(alice, kc_stack, gateway)  # no SSO session left
    again = follow(alice, alice.get(f"{gateway}/oidc/authenticate/"),
                   stop_at=f"{gateway}/oidc/callback/")
    assert again.status_code == 200 and 'id="kc-form-login"' in again.text


@pytest.fixture(scope="module")
def post_gateway(kc_stack: KeycloakStack) -> Iterator[str]:
    """A gateway that signs out by POST (GATEWAY_OIDC_END_SESSION_METHOD=POST), registered
    with the realm's client for as long as the module runs."""
    keycloak = kc_stack.keycloak
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    uuid = keycloak.client_uuid("gateway")
    before = keycloak.admin("GET", f"/clients/{uuid}").json()
    changed = json.loads(json.dumps(before))
    changed["redirectUris"] = [*before["redirectUris"], f"{url}/oidc/callback/"]
    changed["attributes"]["post.logout.redirect.uris"] = (
        before["attributes"]["post.logout.redirect.uris"] + f"##{url}/*")
    assert keycloak.admin("PUT", f"/clients/{uuid}", json=changed).status_code == 204
    env = keycloak_gateway_env(keycloak, port, kc_stack.tmp / "gateway.sqlite3", [url],
                               GATEWAY_OIDC_END_SESSION_METHOD="POST")
    gateway = start_gateway(port, env, kc_stack.tmp / "gateway-post-signout.log",
                            ready_timeout=GATEWAY_READY_TIMEOUT)
    try:
        yield gateway.url
    finally:
        gateway.stop()
        keycloak.admin("PUT", f"/clients/{uuid}", json=before)


async def test_sign_out_by_post_sends_the_id_token_hint_in_the_body_only(
        kc_stack: KeycloakStack, post_gateway: str) -> None:
    """POST: a self-submitting form carries id_token_hint, so Keycloak ends its session
    without asking and sends the browser home with ``state``."""
    gateway = post_gateway
    alice = login(gateway, "alice", "alice-password")
    page = sign_out(alice, gateway)
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    action, fields = _form(page, 'method="post"')
    assert action.startswith(kc_stack.issuer) and "id_token_hint" in fields
    assert "id_token_hint" not in action  # the token travels in the body only
    assert fields["post_logout_redirect_uri"] == f"{gateway}/"
    back = alice.post(action, data=fields)  # what the page's onload submit does
    _landed_home(alice, gateway, back, fields["state"])
    assert _keycloak_asks_for_password(alice, kc_stack, gateway)  # no SSO session left
    again = follow(alice, alice.get(f"{gateway}/oidc/authenticate/"),
                   stop_at=f"{gateway}/oidc/callback/")
    assert again.status_code == 200 and 'id="kc-form-login"' in again.text
