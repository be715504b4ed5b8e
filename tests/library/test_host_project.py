"""The wheel in a host project: its own router and consumer get the principal (issue 21).

Each test runs under Channels' runserver (daphne, no lifespan) and under uvicorn.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.e2e.flows import authorize, logout_at_provider, user_tokens
from tests.library.conftest import ADMIN_PASSWORD, Host

PASSWORD = "alice-password"
WAIT = 10.0  # seconds for any frame or close


def bearer(host: Host) -> str:
    token: str = user_tokens(host.idp.issuer, host.gateway, "alice", PASSWORD)["access_token"]
    return token


def subject_of(token: str) -> str:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def signed_in(host: Host) -> httpx.Client:
    """A browser-like client signed in at the host through ``gateway/oidc/authenticate/``."""
    client = httpx.Client(follow_redirects=False, timeout=10)
    done = client.get(authorize(client, host.gateway, "alice", PASSWORD))
    assert done.status_code == 302, done.text[:300]
    assert "sessionid" in client.cookies
    return client


async def open_ws(host: Host, path: str, headers: dict[str, str]) -> ClientConnection:
    return await connect(host.url.replace("http://", "ws://") + path, additional_headers=headers,
                         open_timeout=10, close_timeout=2)


def with_bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_session(host: Host, client: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"sessionid={client.cookies['sessionid']}", "Origin": host.url}


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def expect_close(host: Host, ws: ClientConnection, code: int, reason: str) -> None:
    """The close code; and its reason, except under daphne, which sends none (docs/library.md)."""
    received = await closed_with(ws)
    assert received == (code, "" if host.server == "daphne" else reason)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    try:
        message = await asyncio.wait_for(ws.recv(), WAIT)  # a socket left open fails, not hangs
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError(f"the socket stayed open and sent {message!r}")


async def test_bearer_and_session_sockets_reach_the_host_consumer_and_its_groups(host: Host) -> None:
    client = signed_in(host)
    token = bearer(host)
    async with await open_ws(host, "/ws/rooms/lobby/", with_session(host, client)) as browser, \
            await open_ws(host, "/ws/rooms/lobby/", with_bearer(token)) as api:
        by_cookie, by_token = await receive(browser), await receive(api)
        assert by_cookie["type"] == by_token["type"] == "welcome"
        assert by_cookie["subject"] == by_token["subject"] == subject_of(token)
        assert by_cookie["user"], "scope['user'] is the signed-in Django user"
        assert by_token["user"] == by_cookie["user"], "the same user, found by issuer and subject"
        await browser.send(json.dumps({"type": "say", "text": "hello room"}))
        assert await receive(api) == {"type": "message", "text": "hello room"}
        assert await receive(browser) == {"type": "message", "text": "hello room"}


async def test_a_route_policy_with_a_path_parameter_admits_and_refuses(host: Host) -> None:
    token = bearer(host)  # alice is in engineering, not in sales
    async with await open_ws(host, "/ws/teams/engineering/", with_bearer(token)) as ws:
        assert (await receive(ws))["type"] == "welcome"
    ws = await open_ws(host, "/ws/teams/sales/", with_bearer(token))
    await expect_close(host, ws, 4403, "claim_mismatch")


async def test_a_grant_admits_and_refuses(host: Host) -> None:
    async with await open_ws(host, "/ws/rooms/lobby/", with_bearer(bearer(host))) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "subscribe", "channel": "rooms.lobby"}))
        assert await receive(ws) == {"type": "subscribed"}
        await ws.send(json.dumps({"type": "subscribe", "channel": "rooms.secret"}))
        assert await receive(ws) == {"type": "refused"}


async def test_a_token_in_the_first_message_reaches_the_host_consumer(host: Host) -> None:
    token = bearer(host)
    async with await open_ws(host, "/ws/rooms/lobby/", {}) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert (await receive(ws))["subject"] == subject_of(token)


async def test_a_ticket_from_the_included_urls_opens_a_subprotocol_socket(host: Host) -> None:
    token = bearer(host)
    minted = httpx.post(f"{host.gateway}/ws/ticket", headers=with_bearer(token), timeout=10)
    assert minted.status_code == 200, minted.text
    offered = [Subprotocol("gateway.v1"), Subprotocol("gateway.ticket." + minted.json()["ticket"])]
    async with connect(host.url.replace("http://", "ws://") + "/ws/rooms/lobby/",
                       subprotocols=offered, open_timeout=10) as ws:
        assert ws.subprotocol == "gateway.v1", "the mixin's accept() answers the offer"
        assert (await receive(ws))["subject"] == subject_of(token)


async def test_refusals_close_with_codes_every_server_sends(host: Host) -> None:
    ws = await open_ws(host, "/ws/rooms/lobby/", with_bearer("not-a-token"))
    assert (await closed_with(ws))[0] == 4401
    ws = await open_ws(host, "/ws/rooms/lobby/?access_token=x", with_bearer(bearer(host)))
    await expect_close(host, ws, 4008, "token_in_url")  # 1008 under every server, daphne too


async def test_a_logout_at_the_provider_closes_the_host_socket_with_4401(host: Host) -> None:
    client = signed_in(host)
    ws = await open_ws(host, "/ws/rooms/lobby/", with_session(host, client))
    assert (await receive(ws))["type"] == "welcome"
    logout_at_provider(host.idp.issuer, client)
    await expect_close(host, ws, 4401, "logged_out")


def test_the_gateway_joins_the_host_admin_without_replacing_its_index(host: Host) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    login = client.get(f"{host.url}/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert csrf, login.text[:300]
    done = client.post(f"{host.url}/admin/login/?next=/admin/", data={
        "csrfmiddlewaretoken": csrf.group(1), "username": "owner", "password": ADMIN_PASSWORD,
        "next": "/admin/"}, headers={"Referer": f"{host.url}/admin/login/"})
    assert done.status_code == 302, done.text[:300]
    index = client.get(f"{host.url}/admin/")
    assert index.status_code == 200, index.text[:500]
    assert "/admin/gateway/grant/" in index.text, "the gateway's models are in the host's admin"
    assert 'id="oversight"' not in index.text, "the host's index template is its own"
    live = client.get(f"{host.url}/gateway/admin/live/")
    assert live.status_code == 200, live.text[:300]
