"""Issue 5: back-channel logout from the real provider closes sockets on every process."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Stack
from tests.e2e.flows import first_message, login, logout_at_provider, open_ws, session_cookie

EVENT = "http://schemas.openid.net/event/backchannel-logout"


async def _open(stack: Stack, client: httpx.Client, index: int) -> ClientConnection:
    gateway = stack.gateways[index].url
    ws = await open_ws(gateway, headers={"Cookie": session_cookie(client), "Origin": gateway})
    await first_message(ws)
    return ws


async def _close_code(ws: ClientConnection, timeout: float = 3.0) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_provider_logout_closes_every_socket_of_the_session(stack: Stack) -> None:
    alice = login(stack.gateway, "alice", "alice-password")
    bob = httpx.Client(follow_redirects=False, timeout=10)
    bob_login = login(stack.gateway, "bob", "bob-password")
    bob.cookies = bob_login.cookies
    alice_sockets = [await _open(stack, alice, 0), await _open(stack, alice, 1)]
    bob_socket = await _open(stack, bob, 1)

    started = time.monotonic()
    logout_at_provider(stack.idp.issuer, alice)
    codes = await asyncio.gather(*(_close_code(ws) for ws in alice_sockets))
    assert codes == [4401, 4401]
    assert time.monotonic() - started < 3
    # bob is untouched
    await bob_socket.send("still there?")
    assert json.loads(await asyncio.wait_for(bob_socket.recv(), 2))["type"] == "error"
    await bob_socket.close()
    # alice's cookie is dead on both processes
    for gateway in stack.gateways:
        ws = await open_ws(gateway.url, headers={"Cookie": session_cookie(alice),
                                                 "Origin": gateway.url})
        assert await _close_code(ws) == 4401


def _signing_key(stack: Stack) -> tuple[KeySet, str]:
    keys = json.loads(stack.idp.keys_file.read_text())
    return KeySet.import_key_set(keys), keys["keys"][0]["kid"]


def _logout_token(stack: Stack, **changes: Any) -> str:
    keyset, kid = _signing_key(stack)
    now = int(time.time())
    claims = {"iss": stack.idp.issuer, "aud": "gateway", "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4()), "sid": f"nobody-{uuid.uuid4()}", "sub": "nobody",
              "events": {EVENT: {}}}
    header = {"alg": "RS256", "kid": kid, "typ": "logout+jwt"}
    header.update(changes.pop("header", {}))
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    if header["alg"] == "none":
        import base64

        def enc(d: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

        return f"{enc(header)}.{enc(claims)}."
    return jwt.encode(header, claims, keyset)


def _post(stack: Stack, token: str) -> httpx.Response:
    return httpx.post(f"{stack.gateway}/oidc/backchannel-logout/", data={"logout_token": token})


def test_valid_crafted_token_then_replay(stack: Stack) -> None:
    token = _logout_token(stack)
    first = _post(stack, token)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    replay = _post(stack, token)
    assert replay.status_code == 400
    assert replay.json()["error_description"] == "replayed_token"


@pytest.mark.parametrize(("changes", "reason"), [
    ({"nonce": "abc"}, "nonce_forbidden"),
    ({"aud": "someone-else"}, "invalid_audience"),
    ({"events": None}, "invalid_events"),
    ({"header": {"alg": "none"}}, "unsupported_algorithm"),
    ({"sid": None, "sub": None}, "missing_claim"),
    ({"iss": "http://127.0.0.1:1/evil"}, "unknown_issuer"),
])
async def test_invalid_logout_tokens_get_400_and_close_nothing(stack: Stack, changes: dict[str, Any],
                                                               reason: str) -> None:
    alice = login(stack.gateway, "alice", "alice-password")
    ws = await _open(stack, alice, 0)
    response = _post(stack, _logout_token(stack, **changes))
    assert response.status_code == 400
    assert response.json()["error_description"] == reason
    await ws.send("ping")
    assert json.loads(await asyncio.wait_for(ws.recv(), 2))["type"] == "error"
    await ws.close()
