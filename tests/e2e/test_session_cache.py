"""Issue 13: the per-process session cache never serves a logged-out session.

Two gateway processes share Redis. Process 1 serves alice's session from its cache (a
socket opened there put it in); she then logs out through process 0, and a handshake on
process 1 with the same cookie, sent the moment the logout answered, is refused with
4401: the logout broadcast emptied process 1's cache before or while that handshake ran.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from tests.e2e.conftest import Stack
from tests.e2e.flows import closed_with, first_message, login, logout_at_provider, open_ws, session_cookie

ROUNDS = 5


def _backchannel_logouts(stack: Stack) -> list[dict[str, Any]]:
    return [e for index in range(len(stack.gateways)) for e in stack.audit_events(index)
            if e.get("event") == "backchannel_logout" and e.get("outcome") == "allow"]


def _csrf(client: httpx.Client, gateway: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(f"{gateway}/").text)
    assert token
    return token.group(1)


async def _warm(gateway: str, cookie: str) -> None:
    """Open and close two sockets: the second is served from the process's cache."""
    for _ in range(2):
        ws = await open_ws(gateway, headers={"Cookie": cookie, "Origin": gateway})
        assert (await first_message(ws))["type"] == "welcome"
        await ws.close()


async def test_gateway_logout_is_refused_at_once_on_the_other_process(stack: Stack) -> None:
    first, other = stack.gateways[0].url, stack.gateways[1].url
    for _ in range(ROUNDS):
        alice = login(first, "alice", "alice-password")
        cookie = session_cookie(alice)
        await _warm(other, cookie)
        out = alice.post(f"{first}/oidc/logout/", data={"csrfmiddlewaretoken": _csrf(alice, first)},
                         headers={"Origin": first})
        assert out.status_code == 303  # to the provider's end_session_endpoint
        code, reason = await closed_with(other, headers={"Cookie": cookie, "Origin": other})
        assert (code, reason) == (4401, "no_session")


async def test_backchannel_logout_is_refused_at_once_on_both_processes(stack: Stack) -> None:
    alice = login(stack.gateway, "alice", "alice-password")
    cookie = session_cookie(alice)
    for gateway in stack.gateways:
        await _warm(gateway.url, cookie)
    seen = len(_backchannel_logouts(stack))
    logout_at_provider(stack.idp.issuer, alice)
    deadline = time.monotonic() + 5
    while len(_backchannel_logouts(stack)) == seen:  # our endpoint has answered
        assert time.monotonic() < deadline, "no back-channel logout reached the gateway"
        await asyncio.sleep(0.005)
    for gateway in stack.gateways:
        code, _ = await closed_with(gateway.url, headers={"Cookie": cookie, "Origin": gateway.url})
        assert code == 4401
