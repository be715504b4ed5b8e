"""Small socket and token helpers shared by the Keycloak scenarios."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e.flows import open_ws, session_cookie
from tests.keycloak.launcher import Keycloak


def jose_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


async def session_socket(gateway: str, client: httpx.Client, path: str = "/ws/") -> ClientConnection:
    return await open_ws(gateway, path=path,
                         headers={"Cookie": session_cookie(client), "Origin": gateway})


async def bearer_socket(gateway: str, token: str, path: str = "/ws/") -> ClientConnection:
    return await open_ws(gateway, path=path, headers={"Authorization": f"Bearer {token}"})


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def welcome(gateway: str, **credential: Any) -> dict[str, Any]:
    """Open /ws/ with a bearer token or a session client; return the principal, then close."""
    if "token" in credential:
        ws = await bearer_socket(gateway, credential["token"])
    else:
        ws = await session_socket(gateway, credential["client"])
    try:
        message = await recv_json(ws)
    finally:
        await ws.close()
    assert message["type"] == "welcome", message
    return dict(message["principal"])


async def refused(gateway: str, token: str) -> tuple[int, str]:
    """Open a bearer socket expected to be closed at once; return (code, reason)."""
    ws = await bearer_socket(gateway, token)
    try:
        message = await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError(f"socket stayed open and sent {message!r}")


async def close_of(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    """Wait for the server to close ``ws`` (skipping lifecycle notices); return (code, reason)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, closed.rcvd.reason


class PubSub:
    """One /ws/events/ socket speaking protocol v1 (docs/protocol.md)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.next_id = ws, 0

    async def request(self, type: str, **fields: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send(json.dumps({"v": 1, "type": type, "id": self.next_id, **fields}))
        while True:
            reply = await recv_json(self.ws)
            if reply.get("id") == self.next_id:
                return reply

    async def subscribe(self, channel: str) -> dict[str, Any]:
        return await self.request("subscribe", channel=channel)

    async def next_message(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            frame = await recv_json(self.ws, timeout)
            if frame["type"] == "message":
                return frame

    async def close(self) -> None:
        await self.ws.close()


async def next_of_kind(ws: ClientConnection, kind: str, timeout: float) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping others."""
    while True:
        frame = await recv_json(ws, timeout)
        if frame["type"] == kind:
            return frame


@contextlib.contextmanager
def access_token_lifespan(keycloak: Keycloak, seconds: int) -> Iterator[None]:
    """The realm's access tokens live ``seconds`` meanwhile (then as before)."""
    before = keycloak.admin("GET", "").json()["accessTokenLifespan"]
    assert keycloak.admin("PUT", "", json={"accessTokenLifespan": seconds}).status_code == 204
    try:
        yield
    finally:
        keycloak.admin("PUT", "", json={"accessTokenLifespan": before})


def record_refresh_events(keycloak: Keycloak) -> None:
    """Keycloak stores a REFRESH_TOKEN event per refresh-token request, for the whole run."""
    config = keycloak.admin("GET", "/events/config").json()
    assert keycloak.admin("PUT", "/events/config", json={
        **config, "eventsEnabled": True, "enabledEventTypes": ["REFRESH_TOKEN"]}).status_code == 204


def refresh_token_events(keycloak: Keycloak, user_id: str) -> int:
    """REFRESH_TOKEN events Keycloak recorded for the user: its refresh-token requests."""
    found = keycloak.admin("GET", "/events", params={
        "type": "REFRESH_TOKEN", "user": user_id, "max": 1000})
    assert found.status_code == 200, found.text
    return len(found.json())


@contextlib.contextmanager
def temporary_user(keycloak: Keycloak, representation: dict[str, Any]) -> Iterator[str]:
    """A realm user made from ``representation`` meanwhile; yields its id."""
    assert keycloak.admin("POST", "/users", json=representation).status_code == 201
    user_id = keycloak.user_id(representation["username"])
    try:
        yield user_id
    finally:
        keycloak.admin("DELETE", f"/users/{user_id}")
