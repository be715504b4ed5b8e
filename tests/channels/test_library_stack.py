"""The library in process: GatewayMiddlewareStack around a host's URLRouter, policy() with a
path parameter, and GatewayConsumerMixin on a plain Channels consumer (issue 21)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.base import SessionBase
from django.urls import path

from gateway.api import GatewayConsumerMixin, GatewayMiddlewareStack, close_for, policy
from gateway.grants.store import GRANTS_GROUP
from gateway.login import refresh
from gateway.login.sessions import AUTH_KEY, session_store_class
from gateway.sockets.addressing import revoke, subject_group, to_group
from oidc.errors import OidcError
from tests.channels.conftest import ISSUER, ORIGIN, token

pytestmark = pytest.mark.django_db(transaction=True)


class Room(GatewayConsumerMixin, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """A host's consumer, as in docs/library.md, plus a few requests for the tests."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.room = "room-" + kwargs.get("room", kwargs.get("team", ""))
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()
        await self.send_json({"type": "welcome", "subject": self.principal.subject,
                              "user": self.scope["user"].is_authenticated})

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content["type"] == "auth":
            try:
                fresh = await self.reauthenticate(content["token"])
            except OidcError as exc:
                code, reason = close_for(exc)
                await self.close_with(code, reason)
                return
            await self.send_json({"type": "reauthed", "expires_at": fresh.expires_at})
        elif content["type"] == "busy":
            await self.close(code=1013)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "text": event["text"]})

    async def on_grants_changed(self) -> None:
        await self.send_json({"type": "grants"})

    async def on_expiring(self) -> None:
        await self.send_json({"type": "expiring"})

    async def on_principal_changed(self) -> None:
        await self.send_json({"type": "refreshed", "expires_at": self.principal.expires_at})


application = GatewayMiddlewareStack(URLRouter([
    path("rooms/<room>/", Room.as_asgi()),
    path("teams/<team>/", policy(Room.as_asgi(), claims=[{"claim": "team", "equals": "{team}"}])),
]))


async def _open(path: str, raw: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, path,
                                 headers=[(b"authorization", f"Bearer {raw}".encode())])
    connected, _ = await comm.connect()
    assert connected
    return comm


async def _closed(comm: WebsocketCommunicator, timeout: float = 3) -> tuple[int, str]:
    message = await comm.receive_output(timeout)
    assert message["type"] == "websocket.close", message
    return message["code"], message.get("reason", "")


async def test_the_host_consumer_gets_the_principal_and_its_groups_work() -> None:
    comm = await _open("/rooms/lobby/", token())
    assert await comm.receive_json_from() == {"type": "welcome", "subject": "svc-1", "user": False}
    await get_channel_layer().group_send("room-lobby", {"type": "chat.message", "text": "hi"})
    assert await comm.receive_json_from() == {"type": "message", "text": "hi"}
    await comm.disconnect()


async def test_a_path_parameter_policy_admits_and_refuses() -> None:
    comm = await _open("/teams/red/", token(team="red"))
    assert (await comm.receive_json_from())["type"] == "welcome"
    await comm.disconnect()
    comm = await _open("/teams/blue/", token(team="red"))
    assert await _closed(comm) == (4403, "claim_mismatch")


async def test_a_logout_closes_the_host_socket_with_4401() -> None:
    comm = await _open("/rooms/lobby/", token())
    await comm.receive_json_from()
    group = subject_group(ISSUER, "svc-1")
    await get_channel_layer().group_send(group, revoke(group, "logged_out"))
    assert await _closed(comm) == (4401, "logged_out")


async def test_the_socket_closes_when_its_credential_expires() -> None:
    comm = await _open("/rooms/lobby/", token(exp=time.time() + 1.5))
    await comm.receive_json_from()
    assert await comm.receive_json_from(timeout=3) == {"type": "expiring"}
    assert await _closed(comm, timeout=5) == (4401, "expired")


LIFETIME = 6.5  # s: the shortest token the 5 s refresh spacing lets live on


async def test_a_session_socket_is_refreshed_server_side_and_outlives_its_first_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def exchange(refresh_token: str) -> dict[str, Any]:
        calls.append(refresh_token)
        return {"access_token": "at-2", "expires_in": LIFETIME, "refresh_token": "rt-2",
                "scope": "openid ws"}

    monkeypatch.setattr(refresh, "_exchange", exchange)
    now = time.time()
    store: SessionBase = session_store_class()()
    await store.aset("_auth_user_id", "1")
    await store.aset(AUTH_KEY, {
        "expires_at": now + LIFETIME, "issued_at": now, "refresh_token": "rt-1",
        "access_token": "at", "id_token": "it",
        "claims": {"issuer": ISSUER, "subject": "carol", "sid": "s-1", "groups": [], "roles": [],
                   "scopes": ["ws"], "expires_at": now + LIFETIME, "client_id": "gateway"}})
    await store.asave()
    comm = WebsocketCommunicator(application, "/rooms/lobby/", headers=[
        (b"cookie", f"sessionid={store.session_key}".encode()), (b"origin", ORIGIN.encode())])
    assert (await comm.connect())[0]
    assert (await comm.receive_json_from())["subject"] == "carol"
    refreshed = await comm.receive_json_from(timeout=LIFETIME)
    assert refreshed["type"] == "refreshed" and refreshed["expires_at"] > now + LIFETIME
    assert calls == ["rt-1"]
    await asyncio.sleep(max(0.0, now + LIFETIME + 0.3 - time.time()))  # past the first token
    await get_channel_layer().group_send("room-lobby", {"type": "chat.message", "text": "still"})
    assert await comm.receive_json_from() == {"type": "message", "text": "still"}
    await comm.disconnect()


async def test_in_band_reauthentication_keeps_the_subject() -> None:
    comm = await _open("/rooms/lobby/", token(exp=time.time() + 60))
    await comm.receive_json_from()
    later = time.time() + 600
    await comm.send_json_to({"type": "auth", "token": token(exp=later, jti="j-2")})
    assert (await comm.receive_json_from())["expires_at"] == pytest.approx(later)
    await comm.send_json_to({"type": "auth", "token": token(sub="someone-else", jti="j-3")})
    assert await _closed(comm) == (4401, "subject_changed")


async def test_grant_changes_reach_the_host_consumer() -> None:
    comm = await _open("/rooms/lobby/", token())
    await comm.receive_json_from()
    await get_channel_layer().group_send(GRANTS_GROUP, to_group(
        GRANTS_GROUP, {"type": "grants.changed", "version": 0}))
    assert await comm.receive_json_from() == {"type": "grants"}
    await comm.disconnect()


async def test_server_specific_close_codes_are_mapped_for_every_server() -> None:
    comm = await _open("/rooms/lobby/", token())
    await comm.receive_json_from()
    await comm.send_json_to({"type": "busy"})
    assert (await _closed(comm))[0] == 4013  # daphne refuses 1013
