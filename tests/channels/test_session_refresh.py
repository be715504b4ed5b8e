"""Session sockets when the provider cannot be reached: keep running until expiry, then 4401."""

from __future__ import annotations

import json
import time
from typing import NoReturn

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.base import SessionBase

from config.asgi import application
from gateway.login import refresh
from gateway.login.sessions import AUTH_KEY, session_store_class
from tests.channels.conftest import ISSUER, ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


async def _session(expires_at: float) -> str:
    store: SessionBase = session_store_class()()
    await store.aset("_auth_user_id", "1")
    await store.aset(AUTH_KEY, {  # an hour-long login near its end: the notice is due at once
        "expires_at": expires_at, "issued_at": expires_at - 3600,
        "refresh_token": "rt", "access_token": "at", "id_token": "it",
        "claims": {"issuer": ISSUER, "subject": "carol", "sid": "s-1", "groups": ["engineering"],
                   "roles": [], "scopes": ["ws"], "expires_at": expires_at, "client_id": "gateway"}})
    await store.asave()
    assert store.session_key is not None
    return store.session_key


async def test_unreachable_provider_keeps_the_socket_until_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    async def unreachable(refresh_token: str) -> NoReturn:
        attempts.append(refresh_token)
        raise refresh.ProviderUnreachable("ConnectError")

    monkeypatch.setattr(refresh, "_exchange", unreachable)
    expires_at = time.time() + 1.5
    key = await _session(expires_at)
    comm = WebsocketCommunicator(application, "/ws/", headers=[
        (b"cookie", f"sessionid={key}".encode()), (b"origin", ORIGIN.encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["principal"]["subject"] == "carol"
    assert json.loads(await comm.receive_from())["type"] == "auth.expiring"
    closing = await comm.receive_output(timeout=5)
    assert attempts == ["rt"]  # a refresh was tried, failed to connect, and did not close
    assert (closing["type"], closing["code"], closing["reason"]) == ("websocket.close", 4401,
                                                                      "expired")
    assert time.time() >= expires_at - 0.05


async def test_refused_refresh_closes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(refresh_token: str) -> NoReturn:
        raise refresh.RefreshFailed("HTTP 400")

    monkeypatch.setattr(refresh, "_exchange", refused)
    key = await _session(time.time() + 30)
    comm = WebsocketCommunicator(application, "/ws/", headers=[
        (b"cookie", f"sessionid={key}".encode()), (b"origin", ORIGIN.encode())])
    assert (await comm.connect())[0]
    await comm.receive_from()  # welcome
    assert json.loads(await comm.receive_from())["type"] == "auth.expiring"
    closing = await comm.receive_output(timeout=5)
    assert (closing["code"], closing["reason"]) == (4401, "refresh_failed")
