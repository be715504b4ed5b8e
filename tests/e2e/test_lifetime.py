"""Issue 5 end to end: short-lived tokens, expiry, in-band and server-side refresh.

A private provider issues access tokens that live 8 s; the gateway warns 4 s ahead.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import devidp
from devidp.stack import ROOT, GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.conftest import REDIS_URL
from tests.e2e.flows import login, open_ws, service_token, session_cookie

TTL = 8
LEAD = 4


@dataclass
class Short:
    idp: devidp.DevIdp
    gateway: GatewayProcess
    env: dict[str, str]


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Short]:
    tmp = tmp_path_factory.mktemp("short")
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", access_token_ttl=TTL,
                       log_file=tmp / "idp.log")
    env = gateway_env(idp.issuer, port, database_file=tmp / "db.sqlite3", redis_url=REDIS_URL,
                      # twins at the default notice, 60 s and 300 s tokens:
                      # tests/e2e/test_defaults.py, tests/keycloak/test_defaults.py and
                      # tests/keycloak/test_five_minute_tokens.py
                      extra={"GATEWAY_EXPIRY_NOTICE_SECONDS": str(LEAD)})
    migrate(env)
    gateway = start_gateway(port, env, tmp / "gateway.log")
    try:
        yield Short(idp, gateway, env)
    finally:
        gateway.stop()
        idp.stop()


async def _next(ws: ClientConnection, timeout: float = TTL + 4) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def _reply(ws: ClientConnection, timeout: float = 3) -> dict[str, Any]:
    """The next frame that is not a notice (auth.expiring, auth.refreshed, channels)."""
    while True:
        frame = await _next(ws, timeout)
        if not frame["type"].startswith("auth.") and frame["type"] != "channels":
            return frame


async def test_short_token_gets_expiring_notice_then_4401(short: Short) -> None:
    token = service_token(short.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    ws = await open_ws(short.gateway.url, headers={"Authorization": f"Bearer {token}"})
    expires_at = (await _next(ws))["principal"]["expires_at"]
    notice = await _next(ws)
    assert notice == {"v": 1, "type": "auth.expiring", "expires_at": expires_at}
    assert time.time() >= expires_at - LEAD - 0.5
    with pytest.raises(ConnectionClosed) as closed:
        await _next(ws)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "expired")
    assert time.time() >= expires_at - 0.5


async def test_inband_refresh_keeps_the_socket_open(short: Short) -> None:
    issuer = short.idp.issuer
    ws = await open_ws(short.gateway.url, headers={
        "Authorization": f"Bearer {service_token(issuer, 'svc-reader', 'ws', devidp.API_AUDIENCE)}"})
    first = (await _next(ws))["principal"]["expires_at"]
    assert (await _next(ws))["type"] == "auth.expiring"
    await asyncio.sleep(1.1)  # exp has one-second resolution: make the new token's exp later
    fresh = service_token(issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    await ws.send(json.dumps({"type": "auth", "token": fresh}))
    welcome = await _next(ws)
    assert welcome["principal"]["expires_at"] > first
    await asyncio.sleep(max(0.0, first - time.time()) + 1)
    await ws.send("still open?")
    assert (await _reply(ws))["error"] == "unsupported"
    await ws.close()


def _add_grants(short: Short, grants: list[dict[str, Any]]) -> None:
    script = ("import django, json, sys; django.setup()\n"
              "from gateway.models import Grant\n"
              "for g in json.loads(sys.argv[-1]): Grant.objects.get_or_create(**g)\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(grants)], cwd=ROOT,
                          env=short.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


async def test_session_socket_refreshes_server_side_and_loses_shrunk_grants(short: Short) -> None:
    issuer = short.idp.issuer
    _add_grants(short, [{"issuer": issuer, "claim": "groups", "value": "admins",
                         "target": "alerts.*", "subscribe": True},
                        {"issuer": issuer, "claim": "groups", "value": "engineering",
                         "target": "deploys", "subscribe": True}])
    client = login(short.gateway.url, "alice", "alice-password")
    ws = await open_ws(short.gateway.url, path="/ws/events/", headers={
        "Cookie": session_cookie(client), "Origin": short.gateway.url})
    assert (await _next(ws))["type"] == "welcome"
    for index, channel in enumerate(["alerts.critical", "deploys"]):
        await ws.send(json.dumps({"v": 1, "type": "subscribe", "id": index, "channel": channel}))
        assert (await _next(ws))["type"] == "ack"
    started = time.time()
    short.idp.set_groups("alice", ["engineering"], ["developer"])  # changed at the provider
    try:
        seen: list[dict[str, Any]] = []
        while "unsubscribed" not in [m["type"] for m in seen]:
            seen.append(await _next(ws))
        types = [m["type"] for m in seen]
        assert types[:2] == ["auth.expiring", "auth.refreshed"]
        assert seen[-1] == {"v": 1, "type": "unsubscribed", "channel": "alerts.critical",
                            "reason": "revoked"}
        assert seen[1]["expires_at"] > started + TTL - 1
        # past the original expiry the socket is still open, and deploys is still granted
        await asyncio.sleep(max(0.0, started + TTL + 1 - time.time()))
        await ws.send(json.dumps({"v": 1, "type": "ping", "id": "p"}))
        assert (await _reply(ws))["type"] == "ack"
        await ws.send(json.dumps({"v": 1, "type": "subscribe", "id": "x",
                                  "channel": "alerts.critical"}))
        assert (await _reply(ws))["error"] == "forbidden"
    finally:
        short.idp.set_groups("alice", ["engineering", "admins"], ["admin", "developer"])
        await ws.close()


def _stored_refresh_token(short: Short, session_key: str) -> str:
    script = ("import django, sys; django.setup()\n"
              "from django.contrib.sessions.backends.db import SessionStore\n"
              "print(SessionStore(sys.argv[-1])['gateway.auth']['refresh_token'])\n")
    done = subprocess.run([sys.executable, "-c", script, session_key], cwd=ROOT, env=short.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


async def test_refresh_token_revoked_at_provider_closes_4401_at_next_refresh(short: Short) -> None:
    import httpx

    from tests.e2e.flows import discovery

    client = login(short.gateway.url, "bob", "bob-password")
    ws = await open_ws(short.gateway.url, headers={"Cookie": session_cookie(client),
                                                   "Origin": short.gateway.url})
    assert (await _next(ws))["type"] == "welcome"
    refresh = _stored_refresh_token(short, client.cookies["sessionid"])
    revoked = httpx.post(discovery(short.idp.issuer)["revocation_endpoint"],
                         auth=("gateway", devidp.CLIENTS["gateway"]),
                         data={"token": refresh, "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    assert (await _next(ws))["type"] == "auth.expiring"
    with pytest.raises(ConnectionClosed) as closed:
        await _next(ws)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "refresh_failed")
