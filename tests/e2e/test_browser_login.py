"""Issue 2: browser login through the real provider, then a session-authenticated websocket."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

import devidp
from tests.e2e.conftest import Stack
from tests.e2e.flows import (
    authorize,
    closed_with,
    first_message,
    login,
    open_ws,
    replace_query,
    session_cookie,
)


def _events(stack: Stack, event: str, outcome: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in stack.audit_events() if e["event"] == event
            and e["outcome"] == outcome and e["reason"] == reason]


def _wait_for_event(stack: Stack, event: str, outcome: str, reason: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = _events(stack, event, outcome, reason)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no audit event {event}/{outcome}/{reason}")


@pytest.mark.parametrize(("user", "groups"), [
    ("alice", {"engineering", "admins"}),
    ("bob", {"engineering"}),
])
async def test_login_then_websocket_describes_principal(stack: Stack, user: str,
                                                        groups: set[str]) -> None:
    client = login(stack.gateway, user, devidp.USERS[user]["password"])
    ws = await open_ws(stack.gateway, headers={"Cookie": session_cookie(client),
                                               "Origin": stack.gateway})
    welcome = await first_message(ws)
    await ws.close()
    principal = welcome["principal"]
    assert welcome["type"] == "welcome"
    assert principal["subject"] == user
    assert principal["issuer"] == stack.idp.issuer
    assert set(principal["groups"]) == groups
    assert "ws" in principal["scopes"]
    assert principal["credential"] == "session"
    assert principal["expires_at"] > time.time() + 60
    allowed = _wait_for_event(stack, "connect", "allow", "allowed")
    assert allowed["subject"] == user or _events(stack, "connect", "allow", "allowed")
    # the audit writer flushes in batches (every 50 ms): wait for the login's line too
    deadline = time.monotonic() + 5
    while not any(e["subject"] == user for e in _events(stack, "login", "allow", "authenticated")):
        assert time.monotonic() < deadline, f"no login audit event for {user}"
        await asyncio.sleep(0.05)


async def test_no_cookie_waits_for_auth_message_then_closes_4408(stack: Stack) -> None:
    # /ws/ also accepts the first-message carrier, so it waits for an auth frame first
    started = time.monotonic()
    code, reason = await closed_with(stack.gateway, headers={"Origin": stack.gateway})
    assert (code, reason) == (4408, "auth_timeout")
    assert time.monotonic() - started < 8
    _wait_for_event(stack, "connect", "deny", "auth_timeout")


async def test_unknown_session_cookie_closes_4401(stack: Stack) -> None:
    code, reason = await closed_with(stack.gateway, headers={
        "Origin": stack.gateway, "Cookie": "sessionid=doesnotexist0123456789abcdefghij"})
    assert (code, reason) == (4401, "no_session")


async def test_foreign_origin_is_refused_at_handshake(stack: Stack) -> None:
    client = login(stack.gateway, "bob", "bob-password")
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(stack.gateway, headers={"Cookie": session_cookie(client),
                                              "Origin": "https://evil.example"})
    assert refused.value.response.status_code == 403
    event = _wait_for_event(stack, "connect", "deny", "origin_not_allowed")
    assert event["origin"] == "https://evil.example"


async def test_cookie_without_origin_closes_4403(stack: Stack) -> None:
    client = login(stack.gateway, "bob", "bob-password")
    code, reason = await closed_with(stack.gateway, headers={"Cookie": session_cookie(client)})
    assert (code, reason) == (4403, "origin_required")


async def test_token_in_query_string_is_refused(stack: Stack) -> None:
    code, reason = await closed_with(stack.gateway, path="/ws/?access_token=abc",
                                     headers={"Origin": stack.gateway})
    assert (code, reason) == (1008, "token_in_url")


async def test_undeclared_route_is_refused(stack: Stack) -> None:
    client = login(stack.gateway, "bob", "bob-password")
    code, reason = await closed_with(stack.gateway, path="/ws/nowhere/", headers={
        "Cookie": session_cookie(client), "Origin": stack.gateway})
    assert (code, reason) == (4404, "no_route")


def _csrf(client: httpx.Client, gateway: str) -> str:
    page = client.get(f"{gateway}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return token.group(1)


async def test_logged_out_session_closes_4401(stack: Stack) -> None:
    client = login(stack.gateway, "alice", "alice-password")
    cookie = session_cookie(client)
    ws = await open_ws(stack.gateway, headers={"Cookie": cookie, "Origin": stack.gateway})
    await first_message(ws)
    out = client.post(f"{stack.gateway}/oidc/logout/", data={"csrfmiddlewaretoken":
                      _csrf(client, stack.gateway)}, headers={"Origin": stack.gateway})
    assert out.status_code == 303  # on to the provider's end_session_endpoint, by GET
    assert out.headers["location"].startswith(stack.idp.issuer)
    assert "id_token_hint" not in out.headers["location"]
    # the open socket of that session is closed, and the cookie no longer works
    from websockets.exceptions import ConnectionClosed
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    code, reason = await closed_with(stack.gateway, headers={"Cookie": cookie,
                                                             "Origin": stack.gateway})
    assert (code, reason) == (4401, "no_session")


def test_logout_requires_post(stack: Stack) -> None:
    client = login(stack.gateway, "bob", "bob-password")
    assert client.get(f"{stack.gateway}/oidc/logout/").status_code == 405


def test_session_key_rotates_at_login(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    callback = authorize(client, stack.gateway, "bob", "bob-password")
    before = client.cookies["sessionid"]
    assert client.get(callback).status_code == 302
    assert client.cookies["sessionid"] != before


def test_csrf_token_rotates_at_login(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    client.get(f"{stack.gateway}/admin/login/")  # sets an anonymous CSRF cookie
    before = client.cookies["csrftoken"]
    callback = authorize(client, stack.gateway, "bob", "bob-password")
    assert client.get(callback).status_code == 302
    assert client.cookies["csrftoken"] != before


def test_tampered_state_is_refused(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    callback = authorize(client, stack.gateway, "bob", "bob-password")
    response = client.get(replace_query(callback, state="forged-state"))
    assert response.status_code == 400
    assert "invalid_state" in response.text
    _wait_for_event(stack, "login", "deny", "invalid_state")
    assert client.get(f"{stack.gateway}/").text.count("Sign in") >= 1


def test_replayed_state_is_refused(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    callback = authorize(client, stack.gateway, "bob", "bob-password")
    assert client.get(callback).status_code == 302
    assert client.get(callback).status_code == 400


def test_tampered_nonce_is_refused(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    callback = authorize(client, stack.gateway, "bob", "bob-password",
                         tamper_auth_request=lambda url: replace_query(url, nonce="attacker"))
    response = client.get(callback)
    assert response.status_code == 401
    assert "invalid_nonce" in response.text
    _wait_for_event(stack, "login", "deny", "invalid_nonce")
    assert "sessionid" not in client.cookies or "Sign in" in client.get(f"{stack.gateway}/").text


def test_wrong_iss_parameter_is_refused(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    callback = authorize(client, stack.gateway, "bob", "bob-password")
    response = client.get(replace_query(callback, iss="https://evil.example"))
    assert response.status_code == 400
    assert "invalid_iss_parameter" in response.text


def test_offsite_next_is_ignored(stack: Stack) -> None:
    client = httpx.Client(follow_redirects=False, timeout=10)
    client.get(f"{stack.gateway}/oidc/authenticate/?next=https://evil.example/")
    # the stored next URL is dropped: after login we land on the gateway
    fresh = login(stack.gateway, "bob", "bob-password")
    start = fresh.get(f"{stack.gateway}/oidc/authenticate/?next=https://evil.example/x")
    callback = authorize_continue(fresh, stack.gateway, start)
    done = fresh.get(callback)
    assert done.status_code == 302
    assert not done.headers["location"].startswith("https://evil.example")


def authorize_continue(client: httpx.Client, gateway: str, start: httpx.Response) -> str:
    from tests.e2e.flows import follow
    page = follow(client, client.get(start.headers["location"]),
                  stop_at=f"{gateway}/oidc/callback/")
    assert page.is_redirect
    return page.headers["location"]
