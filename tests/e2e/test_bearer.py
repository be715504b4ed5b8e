"""Issue 3: non-browser clients through every carrier, route policy, introspection, rotation."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

import devidp
from tests.e2e.conftest import Stack
from tests.e2e.flows import (
    closed_with,
    first_message,
    login,
    open_ws,
    service_token,
    session_cookie,
    user_tokens,
)


@pytest.fixture(scope="module")
def svc_token(stack: Stack) -> str:
    return service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)


@pytest.fixture(scope="module")
def alice_token(stack: Stack) -> str:
    token: str = user_tokens(stack.idp.issuer, stack.gateway, "alice", "alice-password")["access_token"]
    return token


async def _welcome_via(stack: Stack, carrier: str, token: str) -> dict[str, Any]:
    if carrier == "header":
        ws = await open_ws(stack.gateway, headers={"Authorization": f"Bearer {token}"})
    elif carrier == "subprotocol":
        ws = await open_ws(stack.gateway, subprotocols=["gateway.v1", f"gateway.bearer.{token}"])
        assert ws.subprotocol == "gateway.v1"
    else:
        ws = await open_ws(stack.gateway)
        await ws.send(json.dumps({"type": "auth", "token": token}))
    welcome = await first_message(ws)
    await ws.close()
    principal: dict[str, Any] = welcome["principal"]
    return principal


@pytest.mark.parametrize("carrier", ["header", "subprotocol", "message"])
async def test_service_token_opens_websocket(stack: Stack, svc_token: str, carrier: str) -> None:
    principal = await _welcome_via(stack, carrier, svc_token)
    assert principal["subject"] == "svc-reader"
    assert principal["client_id"] == "svc-reader"
    assert principal["scopes"] == ["ws"]
    assert principal["credential"] == {"header": "bearer"}.get(carrier, carrier)


@pytest.mark.parametrize("carrier", ["header", "subprotocol", "message"])
async def test_user_token_opens_websocket(stack: Stack, alice_token: str, carrier: str) -> None:
    principal = await _welcome_via(stack, carrier, alice_token)
    assert principal["subject"] == "alice"
    assert set(principal["groups"]) == {"engineering", "admins"}
    assert "ws" in principal["scopes"]


def _ticket(stack: Stack, client: httpx.Client) -> str:
    page = client.get(f"{stack.gateway}/")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match is not None
    csrf = match.group(1)
    response = client.post(f"{stack.gateway}/ws/ticket", headers={
        "X-CSRFToken": csrf, "Origin": stack.gateway})
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    ticket: str = response.json()["ticket"]
    return ticket


async def test_ticket_works_once(stack: Stack) -> None:
    client = login(stack.gateway, "bob", "bob-password")
    ticket = _ticket(stack, client)
    ws = await open_ws(stack.gateway, subprotocols=["gateway.v1", f"gateway.ticket.{ticket}"])
    principal = (await first_message(ws))["principal"]
    await ws.close()
    assert (principal["subject"], principal["credential"]) == ("bob", "ticket")
    code, reason = await closed_with(stack.gateway, subprotocols=[
        "gateway.v1", f"gateway.ticket.{ticket}"])
    assert (code, reason) == (4401, "invalid_ticket")


async def _outcome(gateway: str, ticket: str) -> str:
    """``welcome`` or the close reason of a socket offering ``ticket``."""
    ws = await open_ws(gateway, subprotocols=["gateway.v1", f"gateway.ticket.{ticket}"])
    try:
        return str((await first_message(ws))["type"])
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return f"{closed.rcvd.code} {closed.rcvd.reason}"
    finally:
        await ws.close()


async def test_one_ticket_redeemed_on_two_processes_at_once_admits_exactly_one(
        stack: Stack) -> None:
    """Issue 23: redemption is one atomic take in Redis (GETDEL), shared by the processes."""
    client = login(stack.gateway, "bob", "bob-password")
    for _ in range(10):
        ticket = _ticket(stack, client)
        outcomes = await asyncio.gather(*(_outcome(gateway.url, ticket)
                                          for gateway in stack.gateways))
        assert sorted(outcomes) == ["4401 invalid_ticket", "welcome"], outcomes


async def test_ticket_in_first_message(stack: Stack) -> None:
    client = login(stack.gateway, "alice", "alice-password")
    ws = await open_ws(stack.gateway)
    await ws.send(json.dumps({"type": "auth", "ticket": _ticket(stack, client)}))
    assert (await first_message(ws))["principal"]["subject"] == "alice"
    await ws.close()


def test_ticket_needs_login_and_post(stack: Stack) -> None:
    anonymous = httpx.post(f"{stack.gateway}/ws/ticket")
    assert anonymous.status_code in (401, 403)
    client = login(stack.gateway, "bob", "bob-password")
    assert client.get(f"{stack.gateway}/ws/ticket").status_code == 405


async def test_missing_scope_closes_4403(stack: Stack, svc_token: str) -> None:
    code, reason = await closed_with(stack.gateway, path="/ws/ops/",
                                     headers={"Authorization": f"Bearer {svc_token}"})
    assert (code, reason) == (4403, "missing_scope")


async def test_scope_granted_opens_ops_route(stack: Stack) -> None:
    token = user_tokens(stack.idp.issuer, stack.gateway, "alice", "alice-password",
                        scope="openid ws ops")["access_token"]
    ws = await open_ws(stack.gateway, path="/ws/ops/", headers={"Authorization": f"Bearer {token}"})
    assert "ops" in (await first_message(ws))["principal"]["scopes"]
    await ws.close()


async def test_session_cookie_not_allowed_on_bearer_only_route(stack: Stack) -> None:
    client = login(stack.gateway, "alice", "alice-password")
    code, reason = await closed_with(stack.gateway, path="/ws/ops/", headers={
        "Cookie": session_cookie(client), "Origin": stack.gateway})
    assert (code, reason) == (4403, "credential_not_allowed")


async def test_opaque_token_is_introspected(stack: Stack) -> None:
    token = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.OPAQUE_AUDIENCE)
    assert token.count(".") != 2
    principal = await _welcome_via(stack, "header", token)
    assert principal["subject"] == "svc-reader"


async def test_garbage_token_closes_4401(stack: Stack) -> None:
    code, _ = await closed_with(stack.gateway, headers={"Authorization": "Bearer a.b.c"})
    assert code == 4401


async def test_first_message_must_be_auth(stack: Stack) -> None:
    ws = await open_ws(stack.gateway)
    await ws.send("hello")
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "invalid_auth_message")


async def test_wrong_origin_refused_on_bearer_path(stack: Stack, svc_token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(stack.gateway, headers={"Authorization": f"Bearer {svc_token}",
                                              "Origin": "https://evil.example"})
    assert refused.value.response.status_code == 403


async def test_rotated_key_is_accepted_without_restart(stack: Stack) -> None:
    new_kid = stack.idp.rotate_keys()
    token = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    header = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] == new_kid
    principal = await _welcome_via(stack, "header", token)
    assert principal["subject"] == "svc-reader"


def _bearer_ticket(stack: Stack, token: str) -> str:
    response = httpx.post(f"{stack.gateway}/ws/ticket", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    ticket: str = response.json()["ticket"]
    return ticket


@pytest.mark.parametrize("who", ["service", "user"])
@pytest.mark.parametrize("carrier", ["subprotocol", "message"])
async def test_bearer_minted_ticket_opens_websocket_once(stack: Stack, svc_token: str,
                                                          alice_token: str, who: str,
                                                          carrier: str) -> None:
    token, subject = (svc_token, "svc-reader") if who == "service" else (alice_token, "alice")
    ticket = _bearer_ticket(stack, token)
    if carrier == "subprotocol":
        ws = await open_ws(stack.gateway, subprotocols=["gateway.v1", f"gateway.ticket.{ticket}"])
    else:
        ws = await open_ws(stack.gateway)
        await ws.send(json.dumps({"type": "auth", "ticket": ticket}))
    principal = (await first_message(ws))["principal"]
    await ws.close()
    assert (principal["subject"], principal["credential"]) == (subject, "ticket")
    code, reason = await closed_with(stack.gateway, subprotocols=[
        "gateway.v1", f"gateway.ticket.{ticket}"])
    assert (code, reason) == (4401, "invalid_ticket")


def test_ticket_with_invalid_bearer_is_refused(stack: Stack) -> None:
    response = httpx.post(f"{stack.gateway}/ws/ticket", headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    assert response.json()["error"] == "malformed_token"


async def _send_then_read(ws: ClientConnection, text: str) -> None:
    await ws.send(text)
    await ws.recv()


@pytest.mark.parametrize(("size", "code", "reason"), [
    (30_000, 4401, "invalid_auth_message"),  # read by the gateway, refused before parsing
    (2 << 20, 1009, "frame with 2097152 bytes exceeds limit of 1048576 bytes"),  # uvicorn: never buffered
])
async def test_an_unauthenticated_socket_cannot_send_a_huge_first_frame(
        stack: Stack, size: int, code: int, reason: str) -> None:
    ws = await open_ws(stack.gateway)
    with pytest.raises(ConnectionClosed) as closed:  # the close may come while still sending
        await _send_then_read(ws, "x" * size)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
