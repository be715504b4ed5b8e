"""One credential per handshake, over real sockets against the production launcher.

Two explicit credentials (Authorization header, bearer subprotocol, ticket subprotocol)
close with 1008 ``ambiguous_credentials`` and are audited; the session cookie a browser
sends by itself yields to an explicit bearer (docs/errors.md, "One credential per handshake").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

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

CARRIERS = {"header+subprotocol": "bearer+subprotocol",
            "two bearer subprotocols": "subprotocol+subprotocol",
            "bearer+ticket subprotocols": "subprotocol+ticket", "header+ticket": "bearer+ticket"}


def _ambiguous(stack: Stack) -> list[dict[str, Any]]:
    return [e for e in stack.audit_events()
            if (e["event"], e["outcome"], e["reason"]) == ("connect", "deny", "ambiguous_credentials")]


def _ticket(stack: Stack, token: str) -> str:
    import httpx

    minted = httpx.post(f"{stack.gateway}/ws/ticket", headers={"Authorization": f"Bearer {token}"})
    assert minted.status_code == 200, minted.text
    ticket: str = minted.json()["ticket"]
    return ticket


@pytest.mark.parametrize("pair", ["header+subprotocol", "two bearer subprotocols",
                                  "bearer+ticket subprotocols", "header+ticket"])
async def test_two_credentials_close_1008_and_are_audited(stack: Stack, pair: str) -> None:
    svc = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    alice = user_tokens(stack.idp.issuer, stack.gateway, "alice", "alice-password")["access_token"]
    headers, protocols = {}, ["gateway.v1"]
    if pair.startswith("header"):
        headers["Authorization"] = f"Bearer {svc}"
    if pair in ("header+subprotocol", "two bearer subprotocols", "bearer+ticket subprotocols"):
        protocols.append(f"gateway.bearer.{alice}")
    if pair == "two bearer subprotocols":
        protocols.append(f"gateway.bearer.{svc}")
    ticket = _ticket(stack, svc) if "ticket" in pair else None
    if ticket:
        protocols.append(f"gateway.ticket.{ticket}")
    seen = len(_ambiguous(stack))
    assert await closed_with(stack.gateway, headers=headers, subprotocols=protocols) == (
        1008, "ambiguous_credentials")
    deadline = time.monotonic() + 5
    while len(_ambiguous(stack)) == seen:  # the audit writer is a thread: let it write
        assert time.monotonic() < deadline, "the refusal was not audited"
        await asyncio.sleep(0.02)
    assert _ambiguous(stack)[-1]["credential"] == CARRIERS[pair]
    log = stack.gateways[0].log()
    assert svc not in log and alice not in log and (ticket is None or ticket not in log)
    if ticket:  # spent by the refused handshake
        assert await closed_with(stack.gateway, subprotocols=["gateway.v1", f"gateway.ticket.{ticket}"]) == (
            4401, "invalid_ticket")


async def test_a_browsers_session_cookie_yields_to_an_explicit_bearer(stack: Stack) -> None:
    bob = login(stack.gateway, "bob", "bob-password")  # the browser's own session: bob
    svc = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    ws = await open_ws(stack.gateway, headers={"Cookie": session_cookie(bob), "Origin": stack.gateway},
                       subprotocols=["gateway.v1", f"gateway.bearer.{svc}"])
    principal = (await first_message(ws))["principal"]
    await ws.close()
    assert (principal["subject"], principal["credential"]) == ("svc-reader", "subprotocol")
    cookie_only = await open_ws(stack.gateway, headers={"Cookie": session_cookie(bob),
                                                        "Origin": stack.gateway})
    assert (await first_message(cookie_only))["principal"]["credential"] == "session"
    await cookie_only.close()
