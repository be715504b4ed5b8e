"""A reconnect storm against the production launch: every handshake of a burst completes,
while the server and the gateway spread the burst's work over loop turns
(``gateway.handshake.pacing``), and the sockets already open keep being served."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

import devidp
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import user_tokens, ws_url

BURST = 300


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devidp.DevIdp]:
    tmp = tmp_path_factory.mktemp("burst-idp")
    provider = devidp.start(free_port(), "http://127.0.0.1:1", log_file=tmp / "idp.log")
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def gateway(idp: devidp.DevIdp, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("burst")
    port = free_port()
    env = gateway_env(idp.issuer, port, database_file=tmp / "db.sqlite3",
                      extra={"GATEWAY_MAX_SOCKETS_PER_SUBJECT": "0",
                             "GATEWAY_METRICS_NETWORKS": "127.0.0.0/8"})
    migrate(env)
    process = start_gateway(port, env, tmp / "gateway.log")
    try:
        yield process
    finally:
        process.stop()


def deferred(gateway: GatewayProcess) -> float:
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    found = re.search(r"^gateway_handshake_work_deferred_total (\S+)$", metrics, re.M)
    assert found, "the pacing counter is not exported"
    return float(found.group(1))


async def welcomed(gateway: GatewayProcess, token: str) -> ClientConnection:
    ws = await connect(ws_url(gateway.url, "/ws/"), open_timeout=30,
                       additional_headers={"Authorization": f"Bearer {token}"})
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert welcome["type"] == "welcome", welcome
    return ws


async def test_every_handshake_of_a_burst_completes_and_open_sockets_are_served(
        gateway: GatewayProcess, idp: devidp.DevIdp) -> None:
    token = user_tokens(idp.issuer, "http://127.0.0.1:1", "bob", "bob-password")["access_token"]
    survivor = await welcomed(gateway, token)
    before = deferred(gateway)
    sockets: list[ClientConnection] = []
    try:
        burst = asyncio.gather(*(welcomed(gateway, token) for _ in range(BURST)))
        await survivor.send(json.dumps({"type": "ping"}))  # /ws/ answers it with an error
        answer = json.loads(await asyncio.wait_for(survivor.recv(), 30))
        sockets = await burst
        assert len(sockets) == BURST
        assert answer["type"] == "error" and answer["error"] == "unsupported", answer
        # the burst was paced: some request heads or authentications waited for a turn
        assert deferred(gateway) > before
    finally:
        await asyncio.gather(*(ws.close() for ws in [survivor, *sockets]))
